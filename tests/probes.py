"""Probe routes mounted on the real app by tests that need a handler of a given shape.

They exercise our real middleware, error handling and request transaction; they are only ever
registered by tests (`mount_probes(app)` before the app starts serving).
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field
from quart import Blueprint, Quart
from quart_schema import validate_request

from backend.api.guards import require_role
from backend.db import discard_changes, get_session, read_only
from backend.errors import Conflict
from backend.middleware.rate_limit import RATE_LIMITS, Limit, rate_limit
from backend.models import User

RATE_LIMITS["probe"] = (Limit(3, 60),)

bp = Blueprint("probes", __name__, url_prefix="/_probe")


class Signup(BaseModel):
    email: str = Field(max_length=50)
    password: str = Field(min_length=12)
    tags: list[str] = Field(default_factory=list, max_length=3)


@bp.post("/echo")
@validate_request(Signup)
async def probe_echo(data: Signup) -> dict:
    return {"email": data.email}


@bp.get("/boom")
async def probe_boom() -> dict:
    raise RuntimeError("secret internal detail: password=hunter2")


@bp.get("/conflict")
async def probe_conflict() -> dict:
    raise Conflict("That already exists.", code="email_taken")


@bp.get("/limited")
@rate_limit("probe")
async def probe_limited() -> dict:
    return {"ok": True}


@bp.post("/users/<int:status>")
async def probe_create_user(status: int) -> tuple[dict, int]:
    """Write a user, then answer with `status`: the request hook decides commit or rollback."""
    session = get_session()
    user = User(email=f"user{status}@example.com", name="Probe")
    session.add(user)
    await session.flush()
    return {"id": user.id}, status


@bp.post("/users/<int:status>/discarded")
async def probe_create_user_discarded(status: int) -> tuple[dict, int]:
    """Write a user, mark the request's work discarded, then answer with `status` (a failed browser flow's
    redirect): nothing is committed."""
    session = get_session()
    user = User(email=f"discarded{status}@example.com", name="Probe")
    session.add(user)
    await session.flush()
    discard_changes()
    return {"id": user.id}, status


@bp.get("/read-only/write")
@read_only
async def probe_read_only_write() -> dict:
    """A handler marked read-only that writes anyway: a bug that must fail, not half-commit."""
    session = get_session()
    session.add(User(email="sneaky@example.com", name="Probe"))
    await session.flush()
    return {"ok": True}


@bp.post("/users/<int:user_id>/increment")
async def probe_increment(user_id: int) -> dict:
    """A deliberate read-then-write (the pattern that loses updates without BEGIN IMMEDIATE)."""
    session = get_session()
    user = await session.get(User, user_id)
    assert user is not None
    count = user.exercises_completed
    await asyncio.sleep(0)  # let other requests interleave between the read and the write
    user.exercises_completed = count + 1
    return {"count": user.exercises_completed}


@bp.post("/admin-only")
@require_role("admin", "mentor")
async def probe_admin_only() -> dict:
    return {"ok": True}


def mount_probes(app: Quart) -> None:
    app.register_blueprint(bp)
