"""Anthropic's Messages API through the official SDK (`system` is its own parameter, not a message)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Awaitable
from contextlib import AbstractContextManager
from typing import Any

import anthropic
import httpx
from anthropic import AsyncAnthropic

from backend.integrations.llm.base import (
    LLM,
    ChatTurn,
    Completion,
    LLMError,
    LLMUnavailable,
    Prompt,
    StreamItem,
    Usage,
    drained,
    elapsed_ms,
    first_answer,
    mapped_sdk_errors,
    server_sent_data,
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

    def _post(self, prompt: Prompt, system: str, timeout: float, *, stream: bool) -> Awaitable[httpx.Response]:
        """`POST /v1/messages` through the SDK's client (its base URL, key, version header and typed errors for
        a refused request), answered as the raw `httpx.Response`, as openai_provider.py does: `.create()`
        first transforms the body field by field and builds a pydantic object of every streamed event."""
        body: dict[str, Any] = {
            "model": self.model,
            "system": system,
            "messages": alternating(prompt.messages),
            "max_tokens": prompt.max_tokens,
        }
        if stream:
            body["stream"] = True
        return self._client.post(
            "/v1/messages", cast_to=httpx.Response, body=body, options={"timeout": timeout}, stream=stream
        )

    async def complete(self, prompt: Prompt, *, json_mode: bool = False) -> Completion:
        started = time.perf_counter()
        system = prompt.system + JSON_INSTRUCTION if json_mode else prompt.system
        response = await first_answer(
            lambda timeout: self._post(prompt, system, timeout, stream=False),
            lambda: mapped_errors(self.provider),
            seconds=self.deadline,
            retries=self.retries,
        )
        with mapped_errors(self.provider, observe=False):
            answer = response.json()
            text = "".join(block["text"] for block in answer["content"] if block.get("type") == "text")
            if not isinstance(text, str):
                raise TypeError("content is not text")
            usage = answer["usage"]
            return Completion(
                text,
                Usage(
                    self.provider,
                    answer.get("model") or self.model,
                    int(usage["input_tokens"]),
                    int(usage["output_tokens"]),
                    elapsed_ms(started),
                ),
            )

    async def stream(self, prompt: Prompt) -> AsyncGenerator[StreamItem, None]:
        started = time.perf_counter()
        model, input_tokens, output_tokens, is_finished = self.model, 0, 0, False
        response = await first_answer(  # until the answer starts; each event then has the client's own timeout
            lambda timeout: self._post(prompt, prompt.system, timeout, stream=True),
            lambda: mapped_errors(self.provider),
            seconds=self.deadline,
            retries=self.retries,
        )
        with mapped_errors(self.provider, observe=False):
            events = server_sent_data(response)
            try:
                async for data in events:
                    event = json.loads(data)
                    kind = event.get("type")
                    if kind == "content_block_delta":
                        delta = event["delta"]
                        if delta.get("type") == "text_delta" and delta.get("text"):
                            if not isinstance(delta["text"], str):
                                raise TypeError("text is not text")
                            yield delta["text"]
                    elif kind == "message_start":
                        model = event["message"].get("model") or model
                        input_tokens = int(event["message"]["usage"]["input_tokens"])
                    elif kind == "message_delta":
                        output_tokens = int(event["usage"]["output_tokens"])
                    elif kind == "message_stop":
                        is_finished = True
                        await drained(events)
                        break
                    elif kind == "error":  # the provider failed after the answer started
                        raise LLMError("bad_response", provider=self.provider)
            finally:
                await events.aclose()
                await response.aclose()  # also when our caller stops early: release the upstream connection
            if not is_finished:  # the connection ended cleanly but the message did not
                raise LLMUnavailable("stream_incomplete", provider=self.provider)
        yield Usage(self.provider, model, input_tokens, output_tokens, elapsed_ms(started))

    async def close(self) -> None:
        await self._client.close()
