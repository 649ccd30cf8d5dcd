from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from quart import Quart
from quart.testing import QuartClient
from sqlalchemy import text

from backend import __version__, migrations
from backend.app import create_app
from backend.config import Settings
from tests.conftest import asyncpg_dsn, make_settings


async def test_root_describes_the_service(embedded_client: QuartClient) -> None:
    response = await embedded_client.get("/")
    assert response.status_code == 200
    assert await response.get_json() == {
        "name": "CodeMentor API",
        "version": __version__,
        "api": "/api/v1",
        "docs": "/docs",
        "openapi": "/openapi.json",
    }


async def test_health_is_ok_without_touching_dependencies(embedded_client: QuartClient) -> None:
    response = await embedded_client.get("/health")
    body = await response.get_json()
    assert response.status_code == 200
    assert body["status"] == "ok" and body["version"] == __version__
    assert body["uptime_seconds"] >= 0


async def test_ready_with_database_cache_and_migrations_ok(client: QuartClient) -> None:
    response = await client.get("/health/ready")
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    checks = body["checks"]
    assert checks["database"]["status"] == "ok" and checks["database"]["latency_ms"] >= 0
    assert checks["cache"]["status"] == "ok"
    assert checks["migrations"]["status"] == "ok"
    assert checks["migrations"]["current"] == checks["migrations"]["head"] is not None
    assert checks["llm"] == {"provider": "offline", "status": "ok", "last_failure": None}


async def ready_body(settings: Settings) -> tuple[int, dict]:
    app = create_app(settings)
    async with app.test_app():
        response = await app.test_client().get("/health/ready")
        return response.status_code, await response.get_json()


async def test_ready_is_not_held_up_by_a_long_write_on_sqlite(embedded_app: Quart) -> None:
    """A probe reads: a writer holding SQLite's write lock must not make the database look down."""
    engine = embedded_app.extensions["db_engine"]
    async with engine.connect() as writer:
        await writer.execute(text("UPDATE users SET name = name"))  # BEGIN IMMEDIATE: the write lock, held
        response = await embedded_app.test_client().get("/health/ready")
        await writer.rollback()
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["checks"]["database"]["status"] == "ok"


async def test_ready_is_503_when_the_database_is_unreachable() -> None:
    status, body = await ready_body(make_settings(database_url="postgresql://postgres@127.0.0.1:1/nowhere"))
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["status"] == "unavailable"
    assert body["checks"]["migrations"]["status"] == "unknown"
    assert "Errno" not in str(body) and "refused" not in str(body).lower()


async def test_ready_is_200_degraded_when_only_redis_is_unreachable(sqlite_url: str) -> None:
    """The app serves without Redis (limits count per process): a load balancer must keep the instance."""
    status, body = await ready_body(make_settings(database_url=sqlite_url, redis_url="redis://127.0.0.1:1/0"))
    assert status == 200 and body["status"] == "degraded"
    assert body["checks"]["cache"] == {**body["checks"]["cache"], "status": "unavailable", "backend": "redis"}
    assert body["checks"]["database"]["status"] == "ok"


async def test_ready_reports_a_provider_configured_without_its_key(sqlite_url: str) -> None:
    status, body = await ready_body(make_settings(database_url=sqlite_url, llm_provider="anthropic"))
    assert status == 200 and body["checks"]["llm"]["status"] == "not_configured"


async def test_ready_is_503_when_migrations_are_not_applied(tmp_path: Path) -> None:
    status, body = await ready_body(make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/empty.db"))
    assert status == 503
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["migrations"]["status"] == "pending"
    assert body["checks"]["migrations"]["current"] is None


async def test_ready_recovers_by_itself_when_the_database_appears(postgres_server: str) -> None:
    name = f"codementor_test_late_{uuid.uuid4().hex[:8]}"
    url = postgres_server.rsplit("/", 1)[0] + "/" + name
    app = create_app(make_settings(database_url=url))
    admin = await asyncpg.connect(asyncpg_dsn(postgres_server))
    try:
        async with app.test_app():
            client = app.test_client()
            assert (await client.get("/health/ready")).status_code == 503
            await admin.execute(f'CREATE DATABASE "{name}"')
            await asyncio.to_thread(migrations.upgrade, url)
            response = await client.get("/health/ready")
            assert response.status_code == 200, await response.get_json()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_security_txt_names_contact_expiry_and_policy(tmp_path: Path) -> None:
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", security_contact="mailto:sec@example.org"
    )
    app = create_app(settings)
    async with app.test_app():
        client = app.test_client()
        response = await client.get("/.well-known/security.txt")
        assert response.status_code == 200 and response.mimetype == "text/plain"
        fields = dict(line.split(": ", 1) for line in (await response.get_data(as_text=True)).splitlines())
        assert fields["Contact"] == "mailto:sec@example.org"
        expires = datetime.fromisoformat(fields["Expires"])
        assert datetime.now(UTC) + timedelta(days=300) < expires <= datetime.now(UTC) + timedelta(days=366)
        policy_path = fields["Policy"].removeprefix(settings.backend_url)
        policy = await client.get(policy_path)
        assert policy.status_code == 200 and "vulnerability" in await policy.get_data(as_text=True)
        spec = await (await client.get("/openapi.json")).get_json()
        assert not any(path.startswith("/.well-known") for path in spec["paths"])


async def test_metrics_need_the_bearer_token_when_one_is_set(sqlite_url: str) -> None:
    app = create_app(make_settings(database_url=sqlite_url, metrics_token="scrape-token-0123456789"))
    async with app.test_app():
        client = app.test_client()
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "scrape-token-0123456789"}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401 and b"http_requests_total" not in await refused.get_data()
        allowed = await client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"})
        assert allowed.status_code == 200 and b"http_requests_total" in await allowed.get_data()
