"""What this process has seen of each LLM provider lately, for `/health/ready` and the metrics.

Every provider call ends in `mapped_sdk_errors` (base.py), which reports here: a success, or a failure
with its log-safe reason. The readiness check then tells the truth ("failing since …, http_401") instead
of a constant `ok`; it never makes the instance unready (the app answers without the LLM).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass
class ProviderStatus:
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_failure_reason: str | None = None

    @property
    def is_failing(self) -> bool:
        """The most recent call failed."""
        if self.last_failure_at is None:
            return False
        return self.last_success_at is None or self.last_failure_at > self.last_success_at


_providers: dict[str, ProviderStatus] = {}


def record_success(provider: str) -> None:
    _providers.setdefault(provider, ProviderStatus()).last_success_at = datetime.now(UTC)


def record_failure(provider: str, reason: str) -> None:
    status = _providers.setdefault(provider, ProviderStatus())
    status.last_failure_at, status.last_failure_reason = datetime.now(UTC), reason


@dataclass(frozen=True)
class Failure:
    at: datetime
    reason: str | None  # log-safe, e.g. `http_401`, `timeout`


@dataclass(frozen=True)
class Report:
    provider: str
    status: str  # ok, failing (the last call failed), not_configured (no API key) or unused (no call yet)
    last_failure: Failure | None


def report(provider: str, *, missing_key: bool = False) -> Report:
    """What this process has seen of `provider` (`GET /health/ready`'s `llm` check)."""
    seen = _providers.get(provider)
    if missing_key:
        status = "not_configured"
    elif seen is None:
        status = "unused" if provider != "offline" else "ok"
    else:
        status = "failing" if seen.is_failing else "ok"
    last_failure = None
    if seen is not None and seen.last_failure_at is not None:
        last_failure = Failure(seen.last_failure_at, seen.last_failure_reason)
    return Report(provider, status, last_failure)
