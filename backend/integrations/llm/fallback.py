"""A primary provider with a fallback that answers when the primary is down, slow or rate limited."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import structlog

from backend.integrations.llm.base import LLM, Completion, LLMError, Prompt, StreamItem

log = structlog.get_logger(__name__)


class FallbackLLM(LLM):
    """Errors that another provider would not fix (a rejected request, a malformed answer) are raised
    as they are; so is a stream that already sent text (the student has seen half an answer)."""

    def __init__(self, primary: LLM, fallback: LLM) -> None:
        self.primary, self.fallback = primary, fallback
        self.provider, self.model = primary.provider, primary.model

    async def complete(self, prompt: Prompt, *, json_mode: bool = False) -> Completion:
        try:
            return await self.primary.complete(prompt, json_mode=json_mode)
        except LLMError as error:
            if not error.retryable:
                raise
            self._log_fallback(error)
        return await self.fallback.complete(prompt, json_mode=json_mode)

    async def stream(self, prompt: Prompt) -> AsyncGenerator[StreamItem, None]:
        has_output = False
        try:
            async with aclosing(self.primary.stream(prompt)) as items:
                async for item in items:
                    has_output = has_output or isinstance(item, str)
                    yield item
            return
        except LLMError as error:
            if has_output or not error.retryable:
                raise
            self._log_fallback(error)
        async with aclosing(self.fallback.stream(prompt)) as items:
            async for item in items:
                yield item

    def _log_fallback(self, error: LLMError) -> None:
        log.warning("llm.fallback", primary=error.provider, reason=error.reason, fallback=self.fallback.provider)

    async def close(self) -> None:
        await self.primary.close()
        await self.fallback.close()
