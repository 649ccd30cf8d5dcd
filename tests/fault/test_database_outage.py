"""PostgreSQL going away mid-run: 503 problem details (never a 500), readiness 503, recovery on its own.

Observed: while the proxy is cut every database-backed request answers 503 `service_unavailable` with
Retry-After; /health/ready answers 503 with the database check `unavailable`; routes that need no
database (/health) keep answering 200. Once the database is back the pool reconnects by itself: the
dead pooled connections are discarded on their first error, so the next requests succeed.
"""

from __future__ import annotations

import asyncio

import structlog
from quart import Quart
from quart.testing import QuartClient

from backend.app import create_app
from tests.api.test_chat import llm_settings, messages_of, parse_sse
from tests.conftest import make_settings
from tests.fakes.llm_servers import FakeOpenAI
from tests.fault.conftest import through_proxy
from tests.fault.proxy import TCPProxy
from tests.helpers import bearer, register, unique_email

RECOVERY_ATTEMPTS = 50


async def get_until_ok(client: QuartClient, path: str, headers: dict[str, str] | None = None) -> int:
    """Requests until one succeeds; returns how many failed first (each must be a clean 503)."""
    for attempt in range(RECOVERY_ATTEMPTS):
        response = await client.get(path, headers=headers)
        if response.status_code == 200:
            return attempt
        assert response.status_code == 503, await response.get_data(as_text=True)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} did not recover")


async def test_database_outage_is_503_and_recovers_by_itself(
    app_behind_postgres_proxy: Quart, postgres_proxy: TCPProxy
) -> None:
    client = app_behind_postgres_proxy.test_client()
    tokens = await register(client)
    assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 200

    await postgres_proxy.cut()
    with structlog.testing.capture_logs() as logged:
        await client.get("/api/v1/users/me", headers=bearer(tokens))
    [unavailable, *_] = [event for event in logged if event["event"] == "database.unavailable"]
    assert unavailable["error"] and unavailable["error"] != unavailable["error_type"]  # the driver's own words
    assert "[SQL" not in unavailable["error"] and "parameters" not in unavailable["error"]
    for method, path, body in [
        ("GET", "/api/v1/users/me", None),
        ("GET", "/api/v1/users/me", None),  # a second time: the pool now holds only dead connections
        ("POST", "/api/v1/auth/login", {"email": unique_email(), "password": "Whatever-123-long"}),
        ("GET", "/api/v1/exercises", None),
    ]:
        response = await client.open(path, method=method, json=body, headers=bearer(tokens))
        problem = await response.get_json()
        assert response.status_code == 503, problem
        assert response.content_type == "application/problem+json"
        assert problem["code"] == "service_unavailable" and response.headers["Retry-After"]
        assert "asyncpg" not in str(problem) and "Traceback" not in str(problem)

    ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert (await ready.get_json())["checks"]["database"]["status"] == "unavailable"
    assert (await client.get("/health")).status_code == 200  # liveness: the process itself is fine

    await postgres_proxy.restore()
    await get_until_ok(client, "/health/ready")
    await get_until_ok(client, "/api/v1/users/me", bearer(tokens))
    assert (
        await client.post("/api/v1/auth/login", json={"email": tokens["user"]["email"], "password": "x"})
    ).status_code == 401


async def test_database_lost_mid_stream_ends_it_with_an_error_event(
    clean_postgres: str, postgres_proxy: TCPProxy, openai_server: FakeOpenAI
) -> None:
    """The reply cannot be stored at the end of a chat stream: the stream still ends properly, with an
    `error` event, instead of being cut; the student's message was committed before the LLM was called."""
    openai_server.reset()
    openai_server.chunk_delay = 0.05
    # Not a timeout test: the LLM gets seconds (llm_settings' 0.5 s ended this stream with `llm_timeout`
    # once, on a loaded CI machine, before its first chunk).
    llm = llm_settings(openai_server) | {"llm_timeout_seconds": 10.0}
    settings = make_settings(database_url=through_proxy(clean_postgres, postgres_proxy), **llm)
    app = create_app(settings)
    async with app.test_app():
        client = app.test_client()
        tokens = await register(client)
        conversation = await (
            await client.post("/api/v1/chat/conversations", json={}, headers=bearer(tokens))
        ).get_json()
        path = f"/api/v1/chat/conversations/{conversation['id']}/messages"
        body = {"content": "Explain recursion", "stream": True}
        streaming = asyncio.create_task(client.post(path, json=body, headers=bearer(tokens)))
        # The LLM is asked and the turn stored (the two overlap: services/chat/turns.py).
        while not openai_server.requests or not await messages_of(client, bearer(tokens), conversation["id"]):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await postgres_proxy.cut()
        response = await streaming
        events = parse_sse(await response.get_data(as_text=True))
        assert response.status_code == 200
        assert events[0][0] == "start" and events[-1][0] == "error"
        assert events[-1][1]["code"] == "service_unavailable"

        await postgres_proxy.restore()
        await get_until_ok(client, "/api/v1/users/me", bearer(tokens))
        stored = await messages_of(client, bearer(tokens), conversation["id"])
        assert stored[0]["content"] == "Explain recursion"
