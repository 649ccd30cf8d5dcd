"""OpenAI Chat Completions through the official SDK; any compatible server via LLM_BASE_URL.

The same code serves OpenAI, Groq, Ollama, vLLM and LM Studio: they all speak `/v1/chat/completions`
with SSE streaming. `max_tokens` (not `max_completion_tokens`) is sent because every compatible
server understands it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import AbstractContextManager
from typing import Any

import openai
from openai import AsyncOpenAI

from backend.integrations.llm.base import (
    LLM,
    Completion,
    LLMUnavailable,
    Prompt,
    StreamItem,
    Usage,
    elapsed_ms,
    first_answer,
    mapped_sdk_errors,
)
from backend.integrations.llm.tokens import count_prompt_tokens, count_tokens

DEFAULT_MODEL = "gpt-4o-mini"
# Local servers (Ollama, vLLM) need no key, but the SDK refuses to start without one.
NO_API_KEY = "not-needed"


def mapped_errors(provider: str, *, observe: bool = True) -> AbstractContextManager[None]:
    return mapped_sdk_errors(openai, openai.OpenAIError, provider, observe=observe)


class OpenAIProvider(LLM):
    provider = "openai"

    def __init__(
        self, *, model: str | None, api_key: str | None, base_url: str | None, timeout: float, max_retries: int
    ) -> None:
        self.model = model or DEFAULT_MODEL
        # The SDK's timeout is per attempt and it would retry on its own: `first_answer` retries instead,
        # within `deadline`, so the effective timeout is what LLM_TIMEOUT_SECONDS says.
        self.deadline, self.retries = timeout, max_retries
        self._client = AsyncOpenAI(api_key=api_key or NO_API_KEY, base_url=base_url, timeout=timeout, max_retries=0)
        # The SDK imports its resources on first use (0.3-2 s here): at start-up, not in the first
        # request's LLM_TIMEOUT_SECONDS.
        self._client.chat.completions  # noqa: B018

    def _request(self, prompt: Prompt) -> dict[str, Any]:
        messages = [{"role": "system", "content": prompt.system}]
        messages += [{"role": turn.role, "content": turn.content} for turn in prompt.messages]
        # The messages travel in `extra_body`, which the SDK sends as given (documented: it takes
        # precedence over the arguments). As `messages=` they would first pass through the SDK's
        # per-field transform: ~0.5 ms of CPU per message, 20 ms for a 40-turn history, all of it
        # before the request leaves (docs/PERFORMANCE.md, the chat turn).
        return {
            "model": self.model,
            "messages": [],
            "max_tokens": prompt.max_tokens,
            "extra_body": {"messages": messages},
        }

    def _usage(self, prompt: Prompt, text: str, model: str | None, reported: Any, started: float) -> Usage:
        if reported is not None:  # some compatible servers omit usage; estimate rather than record zero
            prompt_tokens, completion_tokens = int(reported.prompt_tokens), int(reported.completion_tokens)
        else:
            prompt_tokens = count_prompt_tokens(prompt.system, prompt.messages)
            completion_tokens = count_tokens(text)
        return Usage(self.provider, model or self.model, prompt_tokens, completion_tokens, elapsed_ms(started))

    async def complete(self, prompt: Prompt, *, json_mode: bool = False) -> Completion:
        started = time.perf_counter()
        request = self._request(prompt)
        if json_mode:
            request["response_format"] = {"type": "json_object"}
        response = await first_answer(
            lambda timeout: self._client.chat.completions.create(**request, timeout=timeout),
            lambda: mapped_errors(self.provider),
            seconds=self.deadline,
            retries=self.retries,
        )
        with mapped_errors(self.provider, observe=False):
            if not response.choices:
                raise ValueError("no choices")
            text = response.choices[0].message.content or ""
            return Completion(text, self._usage(prompt, text, response.model, response.usage, started))

    async def stream(self, prompt: Prompt) -> AsyncGenerator[StreamItem, None]:
        started = time.perf_counter()
        parts: list[str] = []
        model, reported, is_finished = None, None, False
        stream = await first_answer(  # until the answer starts; each chunk then has the SDK's own timeout
            lambda timeout: self._client.chat.completions.create(
                **self._request(prompt), stream=True, stream_options={"include_usage": True}, timeout=timeout
            ),
            lambda: mapped_errors(self.provider),
            seconds=self.deadline,
            retries=self.retries,
        )
        with mapped_errors(self.provider, observe=False):
            try:
                async for chunk in stream:
                    model = chunk.model or model
                    reported = chunk.usage or reported  # the last chunk, with `choices: []`
                    for choice in chunk.choices:
                        is_finished = is_finished or choice.finish_reason is not None
                        if choice.delta is not None and choice.delta.content:
                            parts.append(choice.delta.content)
                            yield choice.delta.content
            finally:
                await stream.close()  # also when our caller stops early: release the upstream connection
            if not is_finished:  # the connection ended cleanly but the answer did not
                raise LLMUnavailable("stream_incomplete", provider=self.provider)
        yield self._usage(prompt, "".join(parts), model, reported, started)

    async def close(self) -> None:
        await self._client.close()
