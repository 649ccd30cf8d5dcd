"""Fake OpenAI-compatible and Anthropic servers speaking the real wire formats, on real sockets.

Our code reaches them through the official SDKs (`AsyncOpenAI(base_url=.../v1)`,
`AsyncAnthropic(base_url=...)`), so JSON bodies, SSE framing, status codes and auth headers are exactly
what the SDKs parse in production:
- OpenAI: `POST /v1/chat/completions`; streams are data-only lines of `chat.completion.chunk` objects,
  a usage chunk with `choices: []` (when `stream_options.include_usage`), then `data: [DONE]`.
- Anthropic: `POST /v1/messages`; every stream event has an `event: <type>` line before its `data:` line:
  message_start, content_block_start, ping, content_block_delta…, content_block_stop, message_delta
  (stop reason and usage), message_stop.
Both accept the key as `Authorization: Bearer` or `x-api-key`, and record every request body
(`requests`) so tests can read the system prompt that was sent.

Tests steer them through attributes (call `reset()` between tests): `reply`, `usage`; `status` (answer
every request with that error status), `delay` (seconds before answering: a timeout), `chunk_delay`
(seconds between stream chunks), `break_after` (drop the connection after that many deltas),
`malformed` (undecodable JSON in the body or the stream), and for fault tests `garbage` ("html": a proxy's
error page with status 200; "wrong_shape": valid JSON of the wrong shape), `drop_connection` (headers, then
the connection closes before any body) and `stall_after` (a stream that goes silent after that many deltas).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from quart import Response, g, request

from tests.fakes.oauth_providers import FakeServer

GARBAGE_HTML = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
STALL_SECONDS = 30.0
DEFAULT_REPLY = "Good question! What do you think happens when the list is empty? Try it and tell me."


class StreamBroken(Exception):
    """Raised inside a streamed body: the server drops the connection mid-message."""


def words(text: str) -> list[str]:
    """The reply in small pieces, as a model streams it (every piece keeps its trailing space)."""
    pieces, current = [], ""
    for char in text:
        current += char
        if char == " ":
            pieces.append(current)
            current = ""
    return [*pieces, current] if current else pieces


class FakeLLMServer(FakeServer):
    name = "llm"
    model = "fake-model"

    def __init__(self) -> None:
        self.api_key = f"sk-test-{secrets.token_hex(8)}"
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.requests: list[dict[str, Any]] = []
        self.auth_headers: list[str] = []
        self.client_ports: list[int] = []  # the connection each request came on
        self.reply = DEFAULT_REPLY
        self.usage = (42, 17)  # prompt, completion tokens reported
        self.status: int | None = None
        self.delay_seconds = 0.0
        self.chunk_delay = 0.0
        self.break_after: int | None = None
        self.malformed = False
        self.garbage: str | None = None
        self.drop_connection = False
        self.stall_after: int | None = None

    async def receive(self) -> Response | None:
        """Record the request (also in `g.body`: concurrent requests must each read their own); an auth
        failure, error status or delay answers here."""
        body = g.body = await request.get_json(force=True)
        self.requests.append(body)
        self.client_ports.append(request.scope["client"][1])
        key = request.headers.get("x-api-key") or request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.auth_headers.append(key)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if key != self.api_key:
            return self.error(401, "authentication_error", "invalid x-api-key")
        if self.status is not None:
            return self.error(self.status, "api_error", "Internal server error")
        if self.garbage == "html":
            return Response(GARBAGE_HTML, content_type="text/html")
        if self.garbage == "wrong_shape":
            return Response(
                json.dumps({"unexpected": True, "choices": [], "content": None}), content_type="application/json"
            )
        if self.drop_connection:
            return Response(self._dropped(), content_type="application/json")
        return None

    @staticmethod
    async def _dropped() -> AsyncIterator[bytes]:
        raise StreamBroken("connection dropped before the body on purpose")
        yield b""  # an async generator that fails on its first step

    def error(self, status: int, kind: str, message: str) -> Response:
        raise NotImplementedError

    @property
    def last_request(self) -> dict[str, Any]:
        return self.requests[-1]

    async def paced(self, events: list[tuple[bytes, bool]]) -> AsyncIterator[bytes]:
        """Send `events` (bytes, is a text delta), dropping the connection after `break_after` deltas."""
        deltas = 0
        for event, is_delta in events:
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            if is_delta:
                if self.break_after is not None and deltas >= self.break_after:
                    raise StreamBroken("dropped mid-stream on purpose")
                if self.stall_after is not None and deltas >= self.stall_after:
                    await asyncio.sleep(STALL_SECONDS)  # silent, connection open: only a timeout ends it
                deltas += 1
            yield event

    def sse_response(self, events: list[tuple[bytes, bool]]) -> Response:
        response = Response(self.paced(events), content_type="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        response.timeout = None
        return response


class FakeOpenAI(FakeLLMServer):
    name = "openai"
    model = "gpt-fake-mini"

    def __init__(self) -> None:
        super().__init__()
        self.app.add_url_rule("/v1/chat/completions", "chat_completions", self.chat_completions, methods=["POST"])

    @property
    def sdk_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def error(self, status: int, kind: str, message: str) -> Response:
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return Response(json.dumps(body), status=status, content_type="application/json")

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    async def chat_completions(self) -> Response:
        failure = await self.receive()
        if failure is not None:
            return failure
        body = g.body
        prompt_tokens, completion_tokens = self.usage
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if not body.get("stream"):
            if self.malformed:
                return Response('{"id": "chatcmpl-fake", "choices": [', content_type="application/json")
            return Response(
                json.dumps(
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": self.model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": self.reply},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": usage,
                    }
                ),
                content_type="application/json",
            )

        def data(chunk: dict[str, Any], is_delta: bool = False) -> tuple[bytes, bool]:
            return f"data: {json.dumps(chunk)}\n\n".encode(), is_delta

        events = [data(self.chunk({"role": "assistant", "content": ""}))]
        events += [data(self.chunk({"content": piece}), is_delta=True) for piece in words(self.reply)]
        events.append(data(self.chunk({}, "stop")))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(data({**self.chunk({}), "choices": [], "usage": usage}))
        if self.malformed:
            events.insert(2, (b'data: {"id": "chatcmpl-fake", "choices": [{"delta": \n\n', False))
        events.append((b"data: [DONE]\n\n", False))
        return self.sse_response(events)


class FakeAnthropic(FakeLLMServer):
    name = "anthropic"
    model = "claude-fake-haiku"

    def __init__(self) -> None:
        super().__init__()
        self.app.add_url_rule("/v1/messages", "messages", self.messages, methods=["POST"])

    @property
    def sdk_base_url(self) -> str:
        return self.base_url  # the SDK appends /v1/messages itself

    def error(self, status: int, kind: str, message: str) -> Response:
        body = {"type": "error", "error": {"type": kind, "message": message}}
        return Response(json.dumps(body), status=status, content_type="application/json")

    @staticmethod
    def event(kind: str, data: dict[str, Any]) -> tuple[bytes, bool]:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode(), kind == "content_block_delta"

    async def messages(self) -> Response:
        failure = await self.receive()
        if failure is not None:
            return failure
        input_tokens, output_tokens = self.usage
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "stop_reason": None,
            "stop_sequence": None,
        }
        if not g.body.get("stream"):
            if self.malformed:
                return Response('{"id": "msg_fake", "content": [', content_type="application/json")
            body = {
                **message,
                "content": [{"type": "text", "text": self.reply}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            }
            return Response(json.dumps(body), content_type="application/json")
        events = [
            self.event(
                "message_start",
                {"message": {**message, "content": [], "usage": {"input_tokens": input_tokens, "output_tokens": 1}}},
            ),
            self.event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            self.event("ping", {}),
        ]
        events += [
            self.event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
            for piece in words(self.reply)
        ]
        if self.malformed:
            events.insert(
                4, (b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": \n\n', False)
            )
        events += [
            self.event("content_block_stop", {"index": 0}),
            self.event(
                "message_delta",
                {
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": output_tokens},
                },
            ),
            self.event("message_stop", {}),
        ]
        return self.sse_response(events)
