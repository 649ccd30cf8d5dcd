"""A streamed reply that cannot be finished still ends with an `error` event, never a cut connection.

Once the first event is sent, a failure can no longer become a problem response. Here the database goes
away while the tutor is answering (PostgreSQL behind a TCP proxy that the test cuts), so storing the
reply fails after the deltas: the client must get an `error` event it can show, as docs/API.md promises.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from pydantic import SecretStr
from quart import Quart
from quart.testing import QuartClient

from backend.app import create_app
from tests.conftest import make_settings
from tests.fakes.llm_servers import FakeOpenAI
from tests.fault.proxy import TCPProxy
from tests.helpers import bearer, register

CHAT = "/api/v1/chat"


@pytest.fixture
async def database_proxy(clean_postgres: str) -> AsyncIterator[TCPProxy]:
    parts = urlsplit(clean_postgres)
    proxy = TCPProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def app(clean_postgres: str, database_proxy: TCPProxy, openai_server: FakeOpenAI) -> AsyncIterator[Quart]:
    openai_server.reset()
    parts = urlsplit(clean_postgres)
    user = f"{parts.username}@" if parts.username else ""
    database_url = urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{database_proxy.port}"))
    settings = make_settings(
        database_url=database_url,
        llm_provider=openai_server.name,
        llm_model=openai_server.model,
        llm_base_url=openai_server.sdk_base_url,
        llm_api_key=SecretStr(openai_server.api_key),
    )
    application = create_app(settings)
    async with application.test_app():
        yield application
        await database_proxy.restore()  # the app's shutdown closes its pool through it


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def cut_once_the_turn_is_stored(
    client: QuartClient, headers: dict[str, str], conversation_id: int, fake: FakeOpenAI, proxy: TCPProxy
) -> None:
    """Once the tutor is asked and the student's message committed (the two overlap: services/chat/turns.py)."""
    path = f"{CHAT}/conversations/{conversation_id}/messages"
    while not fake.requests or not (await (await client.get(path, headers=headers)).get_json())["items"]:  # noqa: ASYNC110 (polled through the API: no event to await)
        await asyncio.sleep(0.01)
    await proxy.cut()


async def test_database_lost_mid_stream_ends_with_an_error_event(
    app: Quart, database_proxy: TCPProxy, openai_server: FakeOpenAI
) -> None:
    client = app.test_client()
    headers = bearer(await register(client))
    conversation = await (await client.post(f"{CHAT}/conversations", json={}, headers=headers)).get_json()
    openai_server.chunk_delay = 0.05  # the reply takes a while: the database is gone before it ends
    cutter = asyncio.create_task(
        cut_once_the_turn_is_stored(client, headers, conversation["id"], openai_server, database_proxy)
    )
    response = await client.post(
        f"{CHAT}/conversations/{conversation['id']}/messages", json={"content": "hi", "stream": True}, headers=headers
    )
    await cutter
    assert response.status_code == 200
    events = parse_sse(await response.get_data(as_text=True))
    assert events[0][0] == "start" and [name for name, _ in events].count("error") == 1
    name, data = events[-1]
    assert name == "error" and data["code"] == "service_unavailable"
    assert data["detail"] and "Error" not in data["detail"]  # a sentence for people, no exception text
