"""The service's own endpoints: the root, liveness and readiness."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

READ_FROM_CHECKS = ConfigDict(from_attributes=True)  # built from services/health.py's dataclasses


class ServiceInfo(BaseModel):
    name: str
    version: str
    api: str
    docs: str
    openapi: str


class Liveness(BaseModel):
    status: Literal["ok"]
    version: str
    uptime_seconds: float


class DatabaseCheck(BaseModel):
    model_config = READ_FROM_CHECKS

    status: Literal["ok", "unavailable"]
    latency_ms: float
    error: str | None = Field(None, description="What failed, when it did (never the driver's own message).")


class CacheCheck(BaseModel):
    model_config = READ_FROM_CHECKS

    status: Literal["ok", "unavailable"]
    backend: str = Field(description="`redis`, or `memory` without REDIS_URL.")
    latency_ms: float


class MigrationsCheck(BaseModel):
    model_config = READ_FROM_CHECKS

    status: Literal["ok", "pending", "unknown"] = Field(description="`unknown`: the database could not be read.")
    current: str | None
    head: str | None


class LLMFailure(BaseModel):
    model_config = READ_FROM_CHECKS

    at: datetime
    reason: str | None = Field(description="Log-safe, e.g. `http_401`, `timeout`.")


class LLMCheck(BaseModel):
    """Reported, never a reason to be unready: the tutor and hints answer without an LLM."""

    model_config = READ_FROM_CHECKS

    provider: str
    status: Literal["ok", "failing", "not_configured", "unused"]
    last_failure: LLMFailure | None


class SandboxCheck(BaseModel):
    model_config = READ_FROM_CHECKS

    status: str = Field(
        description="`isolated`, `unisolated` (development without bubblewrap) or `unavailable` (no answer)."
    )


class ReadinessChecks(BaseModel):
    model_config = READ_FROM_CHECKS

    database: DatabaseCheck
    cache: CacheCheck
    migrations: MigrationsCheck
    llm: LLMCheck
    sandbox: SandboxCheck


class Readiness(BaseModel):
    model_config = READ_FROM_CHECKS

    status: Literal["ready", "degraded", "unavailable"]
    checks: ReadinessChecks
