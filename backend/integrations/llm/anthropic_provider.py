"""Anthropic's Messages API through the official SDK (`system` is its own parameter, not a message)."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import AbstractContextManager
from typing import Any

import anthropic
from anthropic import AsyncAnthropic

from backend.integrations.llm.base import (
    LLM,
    ChatTurn,
    Completion,
    LLMUnavailable,
    Prompt,
    StreamItem,
    Usage,
    elapsed_ms,
    first_answer,
    mapped_sdk_errors,
)

DEFAULT_MODEL = "claude-haiku-4-5"
JSON_INSTRUCTION = "\n\nAnswer with a single JSON object and nothing else: no prose, no code fences."


def mapped_errors(provider: str, *, observe: bool = True) -> AbstractContextManager[None]:
    return mapped_sdk_errors(anthropic, anthropic.AnthropicError, provider, observe=observe)


def alternating(turns: tuple[ChatTurn, ...]) -> list[dict[str, str]]:
    """Messages that start with the user and alternate roles, merging neighbours of the same role."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        if not messages and turn.role != "user":
            continue
        if messages and messages[-1]["role"] == turn.role:
            messages[-1]["content"] += "\n\n" + turn.content
        else:
            messages.append({"role": turn.role, "content": turn.content})
    return messages


class AnthropicProvider(LLM):
    provider = "anthropic"

    def __init__(
        self, *, model: str | None, api_key: str | None, base_url: str | None, timeout: float, max_retries: int
    ) -> None:
        self.model = model or DEFAULT_MODEL
        # The SDK's timeout is per attempt and it would retry on its own: `first_answer` retries instead,
        # within `deadline`, so the effective timeout is what LLM_TIMEOUT_SECONDS says.
        self.deadline, self.retries = timeout, max_retries
        self._client = AsyncAnthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def _request(self, prompt: Prompt, system: str) -> dict[str, Any]:
        # The messages in `extra_body`, sent as given: see openai_provider.py (the SDK's transform of
        # `messages=` costs CPU per message before the request leaves).
        return {
            "model": self.model,
            "system": system,
            "messages": [],
            "max_tokens": prompt.max_tokens,
            "extra_body": {"messages": alternating(prompt.messages)},
        }

    async def complete(self, prompt: Prompt, *, json_mode: bool = False) -> Completion:
        started = time.perf_counter()
        system = prompt.system + JSON_INSTRUCTION if json_mode else prompt.system
        response = await first_answer(
            lambda timeout: self._client.messages.create(**self._request(prompt, system), timeout=timeout),
            lambda: mapped_errors(self.provider),
            seconds=self.deadline,
            retries=self.retries,
        )
        with mapped_errors(self.provider, observe=False):
            text = "".join(block.text for block in response.content if block.type == "text")
            usage = Usage(
                self.provider,
                response.model or self.model,
                int(response.usage.input_tokens),
                int(response.usage.output_tokens),
                elapsed_ms(started),
            )
            return Completion(text, usage)

    async def stream(self, prompt: Prompt) -> AsyncGenerator[StreamItem, None]:
        started = time.perf_counter()
        model, input_tokens, output_tokens, is_finished = self.model, 0, 0, False
        stream = await first_answer(  # until the answer starts; each event then has the SDK's own timeout
            lambda timeout: self._client.messages.create(
                **self._request(prompt, prompt.system), stream=True, timeout=timeout
            ),
            lambda: mapped_errors(self.provider),
            seconds=self.deadline,
            retries=self.retries,
        )
        with mapped_errors(self.provider, observe=False):
            try:
                async for event in stream:
                    if event.type == "message_start":
                        model = event.message.model or model
                        input_tokens = int(event.message.usage.input_tokens)
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        if event.delta.text:
                            yield event.delta.text
                    elif event.type == "message_delta":
                        output_tokens = int(event.usage.output_tokens)
                    elif event.type == "message_stop":
                        is_finished = True
            finally:
                await stream.close()
            if not is_finished:  # the connection ended cleanly but the message did not
                raise LLMUnavailable("stream_incomplete", provider=self.provider)
        yield Usage(self.provider, model, input_tokens, output_tokens, elapsed_ms(started))

    async def close(self) -> None:
        await self._client.close()
