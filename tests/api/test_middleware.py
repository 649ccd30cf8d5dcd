"""Request ids, the access log, CORS for the allowed origin, and metrics, through the real app.

Refusals (unknown origins, security headers, HSTS, the docs CSP) live in tests/security/test_browser.py."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from quart import Quart
from quart.testing import QuartClient

from backend import migrations
from backend.app import create_app
from tests.api.test_chat import llm_settings, new_conversation, sign_in
from tests.api.test_exercises import SOLUTION, add_exercise, submit
from tests.api.test_exercises import sign_in as sign_in_student
from tests.conftest import make_settings
from tests.fakes.llm_servers import FakeOpenAI, words

ALLOWED_ORIGIN = "http://localhost:5173"


async def test_sane_request_id_is_echoed(embedded_client: QuartClient) -> None:
    response = await embedded_client.get("/health", headers={"X-Request-ID": "client-id_1.2"})
    assert response.headers["X-Request-ID"] == "client-id_1.2"


@pytest.mark.parametrize("sent", ["", "has space", "x" * 129, 'quote"d', "ünïcode", "a/b"])
async def test_insane_request_id_is_replaced(embedded_client: QuartClient, sent: str) -> None:
    response = await embedded_client.get("/health", headers={"X-Request-ID": sent})
    generated = response.headers["X-Request-ID"]
    assert generated != sent and re.fullmatch(r"[0-9a-f]{32}", generated)


async def test_request_id_generated_when_absent_and_unique(embedded_client: QuartClient) -> None:
    first = (await embedded_client.get("/health")).headers["X-Request-ID"]
    second = (await embedded_client.get("/health")).headers["X-Request-ID"]
    assert first != second


async def test_access_log_line_carries_request_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = create_app(
        make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", log_level="INFO", log_format="json")
    )
    async with app.test_app():
        await app.test_client().get("/health?probe=1", headers={"X-Request-ID": "log-me"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    access = next(line for line in lines if line["event"] == "request.completed")
    assert access["request_id"] == "log-me"
    assert access["method"] == "GET" and access["path"] == "/health" and access["status"] == 200
    assert access["duration_ms"] >= 0 and access["level"] == "info" and "timestamp" in access


async def test_cors_preflight_from_allowed_origin(embedded_client: QuartClient) -> None:
    response = await embedded_client.options(
        "/health",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-csrf-token",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    allowed = {header.strip().lower() for header in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"content-type", "x-csrf-token"}
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


async def test_cors_exposes_request_id_and_rate_limit_headers(embedded_client: QuartClient) -> None:
    response = await embedded_client.get("/health", headers={"Origin": ALLOWED_ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    exposed = {header.strip().lower() for header in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"x-request-id", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= exposed


async def test_metrics_count_requests_by_route_template(embedded_client: QuartClient) -> None:
    def count(text: str) -> float:
        pattern = r'http_requests_total\{method="GET",route="/health",status="200"\} ([0-9.e+]+)'
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0

    before = count(await (await embedded_client.get("/metrics")).get_data(as_text=True))
    await embedded_client.get("/health")
    metrics = await embedded_client.get("/metrics")
    text = await metrics.get_data(as_text=True)
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert count(text) == before + 1
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/health"}' in text
    await embedded_client.get("/api/v1/random-path-12345")
    text = await (await embedded_client.get("/metrics")).get_data(as_text=True)
    assert "random-path-12345" not in text and 'route="<unmatched>"' in text


async def test_metrics_labels_do_not_grow_with_invented_methods(embedded_client: QuartClient) -> None:
    await embedded_client.open("/health", method="BREW")
    text = await (await embedded_client.get("/metrics")).get_data(as_text=True)
    assert "BREW" not in text and 'method="OTHER"' in text


async def test_stream_is_timed_and_logged_when_it_ends_with_its_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], openai_server: FakeOpenAI
) -> None:
    openai_server.reset()
    openai_server.chunk_delay = 0.05
    pieces = len(words(openai_server.reply))
    app = create_app(
        make_settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
            log_level="INFO",
            log_format="json",
            **(llm_settings(openai_server) | {"llm_timeout_seconds": 10}),
        )
    )
    await asyncio.to_thread(migrations.upgrade, f"sqlite+aiosqlite:///{tmp_path}/x.db")
    async with app.test_app():
        client = app.test_client()
        headers = await sign_in(client)
        conversation_id = (await new_conversation(client, headers))["id"]
        capsys.readouterr()
        streamed = await client.post(
            f"/api/v1/chat/conversations/{conversation_id}/messages",
            json={"content": "Stream it", "stream": True},
            headers={**headers, "X-Request-ID": "the-stream"},
        )
        assert "event: done" in await streamed.get_data(as_text=True)
        metrics = await (await client.get("/metrics")).get_data(as_text=True)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [access] = [line for line in lines if line["event"] == "request.completed" and line["request_id"] == "the-stream"]
    assert access["outcome"] == "complete" and access["status"] == 200
    assert access["duration_ms"] >= 0.05 * (pieces - 1) * 1000  # the whole stream, not its first byte
    assert 'http_request_duration_seconds_bucket{le="120.0"' in metrics
    assert 'llm_request_duration_seconds_count{outcome="ok",provider="openai"}' in metrics


def sandbox_waits(metrics: str) -> float:
    match = re.search(r"^sandbox_queue_wait_seconds_count (\S+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_sandbox_queue_wait_is_measured_for_every_run(embedded_app: Quart) -> None:
    client = embedded_app.test_client()
    before = sandbox_waits(await (await client.get("/metrics")).get_data(as_text=True))
    headers, _ = await sign_in_student(client)
    exercise_id = await add_exercise(embedded_app)
    await submit(client, headers, exercise_id, SOLUTION)  # the student's run and the reference run
    after = sandbox_waits(await (await client.get("/metrics")).get_data(as_text=True))
    assert after - before == 2
