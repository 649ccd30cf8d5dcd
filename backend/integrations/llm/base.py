"""The one interface every LLM provider implements, the values it exchanges, and its errors.

Providers turn a `Prompt` into text: `complete()` answers at once, `stream()` yields text deltas and
then one final `Usage`. They raise only `LLMError` and its subclasses, whatever SDK sits underneath, so
the chat service (and later exercises and reviews) never see `openai` or `anthropic` exceptions.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

import httpx
import pydantic

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
    def stream(self, prompt: Prompt) -> AsyncIterator[StreamItem]:
        """Text deltas as they arrive, then a final `Usage`. Close it (`aclose`) to stop early."""

    async def close(self) -> None:
        return None


def elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


@contextmanager
def mapped_sdk_errors(sdk: ModuleType, base_error: type[Exception], provider: str) -> Iterator[None]:
    """An official SDK's exceptions (and malformed data) as our LLMError tree.

    `sdk` is the `openai` or `anthropic` module: both name their errors alike. Timeouts, connection
    errors, 408, 429 and 5xx (Anthropic's 529 "overloaded" included) are worth the fallback; any other
    status is the request's fault."""
    try:
        yield
    except (sdk.APITimeoutError, httpx.TimeoutException) as error:
        raise LLMTimeout("timeout", provider=provider) from error
    # The SDKs wrap transport errors of the request, not always those of a stream being read.
    except (sdk.APIConnectionError, httpx.TransportError) as error:
        raise LLMUnavailable("connection_error", provider=provider) from error
    except sdk.APIStatusError as error:
        reason = f"http_{error.status_code}"
        if error.status_code in (408, 429) or error.status_code >= 500:
            raise LLMUnavailable(reason, provider=provider) from error
        raise LLMError(reason, provider=provider) from error
    except (base_error, pydantic.ValidationError, ValueError, KeyError, TypeError, AttributeError) as error:
        # An `error` object inside a stream, undecodable JSON, a chunk of the wrong shape.
        raise LLMError("bad_response", provider=provider) from error
