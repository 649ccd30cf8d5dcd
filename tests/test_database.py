"""The request owns the transaction; SQLite serialises writers so read-then-write loses nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from quart.testing import QuartClient
from sqlalchemy import select

from backend.app import create_app
from backend.db import create_engine, create_session_factory
from backend.models import User
from tests.conftest import make_settings
from tests.helpers import bearer, register
from tests.probes import mount_probes


async def test_success_commits_and_error_status_rolls_back(probe_client: QuartClient) -> None:
    created = await probe_client.post("/_probe/users/201")
    refused = await probe_client.post("/_probe/users/400")
    assert created.status_code == 201 and refused.status_code == 400
    settings = probe_client.app.config["SETTINGS"]
    engine = create_engine(settings)
    async with create_session_factory(engine)() as session:
        emails = set(await session.scalars(select(User.email)))
    await engine.dispose()
    assert emails == {"user201@example.com"}


async def test_a_success_marked_discarded_rolls_back(probe_client: QuartClient) -> None:
    kept = await probe_client.post("/_probe/users/302")
    discarded = await probe_client.post("/_probe/users/302/discarded")
    after = await probe_client.post("/_probe/users/201")  # the mark does not outlive its request
    assert (kept.status_code, discarded.status_code, after.status_code) == (302, 302, 201)
    engine = create_engine(probe_client.app.config["SETTINGS"])
    async with create_session_factory(engine)() as session:
        emails = set(await session.scalars(select(User.email)))
    await engine.dispose()
    assert emails == {"user302@example.com", "user201@example.com"}


async def test_a_read_only_handler_that_writes_fails_and_writes_nothing(probe_client: QuartClient) -> None:
    response = await probe_client.get("/_probe/read-only/write")
    assert response.status_code == 500
    engine = create_engine(probe_client.app.config["SETTINGS"])
    async with create_session_factory(engine)() as session:
        emails = set(await session.scalars(select(User.email)))
    await engine.dispose()
    assert "sneaky@example.com" not in emails


async def test_read_only_requests_see_a_revoked_session_at_once(client: QuartClient) -> None:
    tokens = await register(client)
    headers = bearer(tokens)
    for path in ("/api/v1/users/me/progress", "/api/v1/exercises?limit=5", "/api/v1/chat/conversations"):
        assert (await client.get(path, headers=headers)).status_code == 200
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    for path in ("/api/v1/users/me/progress", "/api/v1/exercises?limit=5", "/api/v1/chat/conversations"):
        assert (await client.get(path, headers=headers)).status_code == 401


async def test_read_only_requests_return_their_one_connection(client: QuartClient) -> None:
    # A read-only request keeps the connection of its authentication for its reads (db.share_read_connection):
    # whatever the outcome, it is back in the pool when the response is.
    headers = bearer(await register(client))
    pool = client.app.extensions["db_engine"].sync_engine.pool
    for _ in range(100):  # registering's background tasks (the welcome email) finish first
        if pool.checkedout() == 0:
            break
        await asyncio.sleep(0.02)
    for path, status in [
        ("/api/v1/users/me/progress", 200),
        ("/api/v1/exercises/history", 200),
        ("/api/v1/chat/conversations/999999", 404),
        ("/api/v1/exercises?limit=0", 422),
    ]:
        assert (await client.get(path, headers=headers)).status_code == status
        assert pool.checkedout() == 0, path


async def test_timestamps_come_back_timezone_aware(probe_client: QuartClient) -> None:
    await probe_client.post("/_probe/users/201")
    engine = create_engine(probe_client.app.config["SETTINGS"])
    async with create_session_factory(engine)() as session:
        user = await session.scalar(select(User))
    await engine.dispose()
    assert user is not None and user.created_at.tzinfo is not None
    assert abs((datetime.now(UTC) - user.created_at).total_seconds()) < 60


async def test_sqlite_read_then_write_race_loses_no_update(sqlite_url: str) -> None:
    app = create_app(make_settings(database_url=sqlite_url))
    mount_probes(app)
    async with app.test_app():
        client = app.test_client()
        user_id = (await (await client.post("/_probe/users/201")).get_json())["id"]
        requests = 200
        responses = await asyncio.gather(*(client.post(f"/_probe/users/{user_id}/increment") for _ in range(requests)))
        assert all(response.status_code == 200 for response in responses)
        counts = sorted([(await response.get_json())["count"] for response in responses])
    assert counts == list(range(1, requests + 1))  # every increment saw the previous one
