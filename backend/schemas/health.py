from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


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


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "unavailable"]
    checks: dict[str, dict[str, Any]]
