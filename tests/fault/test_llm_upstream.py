"""The LLM upstream failing, hanging or answering garbage: 502/504 problem details, and nothing lost.

tests/api/test_chat.py already covers 5xx statuses, a slow first byte (504), undecodable JSON and a
stream cut midway; these are the remaining ways an upstream (or a proxy in front of it) breaks. In each,
the student's message is stored before the call and stays; the assistant message is `failed` (or
`partial` with what was streamed), and no 500 ever reaches the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from backend.app import create_app
from tests.api.test_chat import llm_settings, messages_of, new_conversation, parse_sse, send, sign_in
from tests.conftest import make_settings
from tests.fakes.llm_servers import FakeAnthropic, FakeLLMServer, FakeOpenAI


@pytest.fixture(params=["openai", "anthropic"])
def fake(request: pytest.FixtureRequest, openai_server: FakeOpenAI, anthropic_server: FakeAnthropic) -> FakeLLMServer:
    server = openai_server if request.param == "openai" else anthropic_server
    server.reset()
    return server


@pytest.fixture
async def chat_app(sqlite_url: str, fake: FakeLLMServer) -> AsyncIterator[Quart]:
    application = create_app(make_settings(database_url=sqlite_url, **llm_settings(fake)))
    async with application.test_app():
        yield application


async def ask(client: QuartClient) -> tuple[Any, list[dict[str, Any]], dict[str, str], int]:
    headers = await sign_in(client)
    conversation_id = (await new_conversation(client, headers))["id"]
    response = await send(client, headers, conversation_id, "Why does my loop never end?")
    return response, await messages_of(client, headers, conversation_id), headers, conversation_id


@pytest.mark.parametrize(
    ("failure", "value"), [("garbage", "html"), ("garbage", "wrong_shape"), ("drop_connection", True)]
)
async def test_broken_upstream_answer_is_502_and_keeps_the_message(
    chat_app: Quart, fake: FakeLLMServer, failure: str, value: object
) -> None:
    setattr(fake, failure, value)
    response, stored, headers, conversation_id = await ask(chat_app.test_client())
    problem = await response.get_json()
    assert response.status_code == 502, problem
    assert problem["code"] == "llm_error" and response.content_type == "application/problem+json"
    assert "nginx" not in problem["detail"] and "Traceback" not in str(problem)
    assert [(m["role"], m["content"], m["status"]) for m in stored] == [
        ("user", "Why does my loop never end?", "complete"),
        ("assistant", "", "failed"),
    ]

    client = chat_app.test_client()
    streamed = await send(client, headers, conversation_id, "Still there?", stream=True)
    events = parse_sse(await streamed.get_data(as_text=True))
    assert events[0][0] == "start" and events[-1][0] == "error"
    assert events[-1][1]["code"] in ("llm_error", "llm_timeout")


async def test_stream_that_goes_silent_ends_with_timeout_and_keeps_the_partial_reply(
    chat_app: Quart, fake: FakeLLMServer
) -> None:
    fake.stall_after = 3
    client = chat_app.test_client()
    headers = await sign_in(client)
    conversation_id = (await new_conversation(client, headers))["id"]
    response = await send(client, headers, conversation_id, "Explain recursion", stream=True)
    events = parse_sse(await response.get_data(as_text=True))
    assert [name for name, _ in events] == ["start", "delta", "delta", "delta", "error"]
    assert events[-1][1]["code"] == "llm_timeout"
    [question, reply] = await messages_of(client, headers, conversation_id)
    assert question["content"] == "Explain recursion"
    assert reply["status"] == "partial"
    assert reply["content"] == "".join(data["content"] for name, data in events if name == "delta")
