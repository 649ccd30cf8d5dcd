"""The one interface every LLM provider implements, the values it exchanges, and its errors.

Providers turn a `Prompt` into text: `complete()` answers at once, `stream()` yields text deltas and
then one final `Usage`. They raise only `LLMError` and its subclasses, whatever SDK sits underneath, so
the chat service (and later exercises and reviews) never see `openai` or `anthropic` exceptions.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Literal, TypeVar

import httpx
import pydantic
import structlog

from backend.integrations.llm import status as llm_status
from backend.metrics import LLM_DURATION, LLM_ERRORS

log = structlog.get_logger(__name__)

Role = Literal["user", "assistant"]
DEFAULT_MAX_TOKENS = 1024


@dataclass(frozen=True)
class ChatTurn:
    role: Role
    content: str


@dataclass(frozen=True)
class Attempt:
    """An exercise conversation's latest submission, for the offline tutor: names and kinds only."""

    status: str
    failing_test: str | None = None
    failure_kind: str | None = None  # "IndexError", "wrong result", "timeout", ...
    line: int | None = None
    tests_passed: int = 0
    tests_total: int = 0


@dataclass(frozen=True)
class Prompt:
    """What a provider is asked: the system prompt apart, the conversation oldest first.

    The last turn is the student's new message. `skill_level`, `hint`, `exercise_title` and `attempt` are
    read by the offline tutor only (a real model finds them in the system prompt)."""

    system: str
    messages: tuple[ChatTurn, ...]
    skill_level: str | None = None
    hint: str | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    exercise_title: str | None = None
    attempt: Attempt | None = None


@dataclass(frozen=True)
class Usage:
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage


StreamItem = str | Usage  # text deltas, then exactly one Usage when the stream ended normally


class LLMError(Exception):
    """The provider failed in a way another provider would not fix: a rejected request, a malformed answer."""

    retryable = False

    def __init__(self, reason: str, *, provider: str) -> None:
        self.reason = reason  # short and log-safe, e.g. "http_401", "bad_response"
        self.provider = provider
        super().__init__(f"{provider}: {reason}")


class LLMUnavailable(LLMError):
    """Down, overloaded, rate limited or unreachable: worth asking the fallback provider."""

    retryable = True


class LLMRejected(LLMUnavailable):
    """401/403/404: the provider refused our configuration (key, access, base URL, model). Asking it again
    changes nothing, but the fallback provider, configured apart, may answer."""


class LLMTimeout(LLMUnavailable):
    """No answer (or no next chunk) within LLM_TIMEOUT_SECONDS."""


class LLM(ABC):
    provider: str
    model: str

    @abstractmethod
    async def complete(self, prompt: Prompt, *, json_mode: bool = False) -> Completion:
        """The whole answer. With `json_mode` the model is told to answer with one JSON object (callers
        still validate it: a model may ignore the instruction)."""

    @abstractmethod
    def stream(self, prompt: Prompt) -> AsyncGenerator[StreamItem, None]:
        """Text deltas as they arrive, then a final `Usage`. Close it (`aclose`) to stop early."""

    async def close(self) -> None:
        return None


def elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


# Statuses that mean our configuration is wrong (bad key, no access, wrong base URL or model): another
# provider may well answer, so they go to the fallback like an outage, with a log line that says which.
CONFIGURATION_STATUSES = {
    401: "check its API key",
    403: "check its API key's access",
    404: "check its base URL and model",
}


RETRY_BACKOFF_SECONDS = 0.5
T = TypeVar("T")


async def first_answer(
    attempt: Callable[[float], Awaitable[T]],
    mapped: Callable[[], AbstractContextManager[None]],
    *,
    seconds: float,
    retries: int,
) -> T:
    """`attempt(timeout)` (a request up to the start of its answer, with the SDK's timeout for it), retried
    on an outage while a retry still fits, all within `seconds`: LLM_TIMEOUT_SECONDS is the whole wait,
    retries included. (The SDKs would retry on their own with a fresh timeout each time, so they run with
    `max_retries=0`.)"""
    deadline = time.monotonic() + seconds
    for number in range(retries + 1):
        try:
            with mapped():
                return await attempt(max(0.01, deadline - time.monotonic()))
        except (LLMTimeout, LLMRejected):  # the time is spent, or asking again cannot help
            raise
        except LLMUnavailable:
            if number == retries or deadline - time.monotonic() < 2 * RETRY_BACKOFF_SECONDS:
                raise
            await asyncio.sleep(RETRY_BACKOFF_SECONDS)
    raise AssertionError("unreachable: the last attempt returns or raises")


@contextmanager
def mapped_sdk_errors(
    sdk: ModuleType, base_error: type[Exception], provider: str, *, observe: bool = True
) -> Iterator[None]:
    """An official SDK's exceptions (and malformed data) as our LLMError tree, and every call's outcome in
    the provider's status (status.py) and metrics.

    `sdk` is the `openai` or `anthropic` module: both name their errors alike. Timeouts, connection
    errors, 401/403/404, 408, 429 and 5xx (Anthropic's 529 "overloaded" included) are worth the fallback;
    any other status is the request's fault. With `observe=False` (reading an answer that `first_answer`
    already timed) only failures are recorded."""
    started = time.perf_counter()
    try:
        yield
    except BaseException as error:
        mapped = _mapped(sdk, base_error, provider, error)
        if mapped is None:  # cancelled, or a caller that stopped reading: not the provider's doing
            raise
        llm_status.record_failure(provider, mapped.reason)
        LLM_ERRORS.labels(provider, mapped.reason).inc()
        if observe:
            LLM_DURATION.labels(provider, "error").observe(time.perf_counter() - started)
        if mapped is error:
            raise
        raise mapped from error
    if observe:
        llm_status.record_success(provider)
        LLM_DURATION.labels(provider, "ok").observe(time.perf_counter() - started)


def _mapped(sdk: ModuleType, base_error: type[Exception], provider: str, error: BaseException) -> LLMError | None:
    if isinstance(error, LLMError):
        return error
    if isinstance(error, (sdk.APITimeoutError, httpx.TimeoutException, TimeoutError)):
        return LLMTimeout("timeout", provider=provider)
    # The SDKs wrap transport errors of the request, not always those of a stream being read.
    if isinstance(error, (sdk.APIConnectionError, httpx.TransportError)):
        return LLMUnavailable("connection_error", provider=provider)
    if isinstance(error, sdk.APIStatusError):
        reason = f"http_{error.status_code}"
        if error.status_code in CONFIGURATION_STATUSES:
            log.error(
                "llm.provider_rejected_request",
                provider=provider,
                status=error.status_code,
                hint=f"the provider refused our configuration: {CONFIGURATION_STATUSES[error.status_code]}",
            )
            return LLMRejected(reason, provider=provider)
        if error.status_code in (408, 429) or error.status_code >= 500:
            return LLMUnavailable(reason, provider=provider)
        return LLMError(reason, provider=provider)
    if isinstance(error, (base_error, pydantic.ValidationError, ValueError, KeyError, TypeError, AttributeError)):
        # An `error` object inside a stream, undecodable JSON, a chunk of the wrong shape.
        return LLMError("bad_response", provider=provider)
    return None


# --- reading a provider's stream ourselves (the SDKs build a pydantic object per event) ----------------

DRAIN_SECONDS = 1.0


async def server_sent_data(response: httpx.Response) -> AsyncGenerator[str, None]:
    """The `data` of each server-sent event of `response` (several `data:` lines joined by newlines, as
    the SSE format says). Comments and the `event`, `id` and `retry` fields are of no use here."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
    if data:
        yield "\n".join(data)


async def drained(events: AsyncGenerator[str, None]) -> None:
    """Read what follows `[DONE]` (the end of the chunked body), so the connection goes back to the pool:
    OpenAI's SDK stops reading at `[DONE]`, which closes the connection, and the next message then
    opens a new one (a TLS handshake with a real provider). Bounded: a server that keeps the body open
    after `[DONE]` costs its connection, not the student's time."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in events:
                pass
    except (TimeoutError, httpx.HTTPError):
        pass  # the answer is complete; `aclose()` drops this connection
