"""OpenAI Chat Completions through the official SDK; any compatible server via LLM_BASE_URL.

The same code serves OpenAI, Groq, Ollama, vLLM and LM Studio: they all speak `/v1/chat/completions`
with SSE streaming. `max_tokens` (not `max_completion_tokens`) is sent because every compatible
server understands it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Awaitable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI

from backend.integrations.llm.base import (
    LLM,
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

    def _body(self, prompt: Prompt) -> dict[str, Any]:
        messages = [{"role": "system", "content": prompt.system}]
        messages += [{"role": turn.role, "content": turn.content} for turn in prompt.messages]
        return {"model": self.model, "messages": messages, "max_tokens": prompt.max_tokens}

    def _post(self, body: dict[str, Any], timeout: float, *, stream: bool) -> Awaitable[httpx.Response]:
        """`POST /chat/completions` through the SDK's client (its base URL, key, headers and typed errors for
        a refused request), answered as the raw `httpx.Response`: `.create()` first runs its per-field
        transform over the body (1-2 ms of CPU per chat message, all of it before the request leaves) and
        builds a pydantic object of every streamed chunk (docs/PERFORMANCE.md, the chat turn)."""
        return self._client.post(
            "/chat/completions", cast_to=httpx.Response, body=body, options={"timeout": timeout}, stream=stream
        )

    def _usage(self, prompt: Prompt, text: str, model: str | None, reported: Any, started: float) -> Usage:
        if reported:  # some compatible servers omit usage; estimate rather than record zero
            prompt_tokens, completion_tokens = int(reported["prompt_tokens"]), int(reported["completion_tokens"])
        else:
            prompt_tokens = count_prompt_tokens(prompt.system, prompt.messages)
            completion_tokens = count_tokens(text)
        return Usage(self.provider, model or self.model, prompt_tokens, completion_tokens, elapsed_ms(started))

    async def complete(self, prompt: Prompt, *, json_mode: bool = False) -> Completion:
        started = time.perf_counter()
        body = self._body(prompt)
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        response = await first_answer(
            lambda timeout: self._post(body, timeout, stream=False),
            lambda: mapped_errors(self.provider),
            seconds=self.deadline,
            retries=self.retries,
        )
        with mapped_errors(self.provider, observe=False):
            answer = response.json()
            if not answer.get("choices"):
                raise ValueError("no choices")
            text = answer["choices"][0]["message"].get("content") or ""
            if not isinstance(text, str):
                raise TypeError("content is not text")
            return Completion(text, self._usage(prompt, text, answer.get("model"), answer.get("usage"), started))

    async def stream(self, prompt: Prompt) -> AsyncGenerator[StreamItem, None]:
        started = time.perf_counter()
        parts: list[str] = []
        model, reported, is_finished = None, None, False
        body = self._body(prompt) | {"stream": True, "stream_options": {"include_usage": True}}
        response = await first_answer(  # until the answer starts; each chunk then has the client's own timeout
            lambda timeout: self._post(body, timeout, stream=True),
            lambda: mapped_errors(self.provider),
            seconds=self.deadline,
            retries=self.retries,
        )
        with mapped_errors(self.provider, observe=False):
            events = server_sent_data(response)
            try:
                async for data in events:
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if chunk.get("error"):  # the provider failed after the answer started
                        raise LLMError("bad_response", provider=self.provider)
                    model = chunk.get("model") or model
                    reported = chunk.get("usage") or reported  # the last chunk, with `choices: []`
                    for choice in chunk.get("choices") or ():
                        is_finished = is_finished or choice.get("finish_reason") is not None
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            if not isinstance(content, str):
                                raise TypeError("content is not text")
                            parts.append(content)
                            yield content
                if is_finished:
                    await drained(events)
            finally:
                await events.aclose()
                await response.aclose()  # also when our caller stops early: release the upstream connection
            if not is_finished:  # the connection ended cleanly (or said [DONE]) but the answer did not
                raise LLMUnavailable("stream_incomplete", provider=self.provider)
        yield self._usage(prompt, "".join(parts), model, reported, started)

    async def close(self) -> None:
        await self._client.close()
