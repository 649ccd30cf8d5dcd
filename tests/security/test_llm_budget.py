"""The daily LLM token budget holds on every feature that calls the LLM, not only chat."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from backend.models.chat import LLMUsage
from tests.api.test_chat import llm_settings, new_conversation
from tests.api.test_exercises import EXERCISES, HINTS, SOLUTION, add_exercise, sign_in, submit
from tests.conftest import AppFactory
from tests.fakes.llm_servers import FakeOpenAI

CHAT = "/api/v1/chat"


async def test_spent_budget_stops_hints_grading_generation_and_chat(
    make_app: AppFactory, openai_server: FakeOpenAI
) -> None:
    openai_server.reset()
    app = await make_app(**llm_settings(openai_server), llm_daily_token_budget=100)  # one call costs 42 + 17
    client = app.test_client()
    headers, user_id = await sign_in(client)
    exercise_id = await add_exercise(app)
    for _ in range(2):  # the second call crosses the budget (its size is only known afterwards)
        hint = await client.post(f"{EXERCISES}/{exercise_id}/hint", json={}, headers=headers)
        assert (await hint.get_json())["source"] == "llm"
    assert len(openai_server.requests) == 2

    third = await (await client.post(f"{EXERCISES}/{exercise_id}/hint", json={}, headers=headers)).get_json()
    assert third["source"] == "authored" and third["hint"] == HINTS[2]
    graded = (await submit(client, headers, exercise_id, SOLUTION))["submission"]
    assert graded["status"] == "passed" and graded["rubric"]["quality"] == 1.0  # static measures, no LLM
    generate = await client.post(f"{EXERCISES}/generate", json={"topic": "math"}, headers=headers)
    assert generate.status_code == 429 and (await generate.get_json())["code"] == "quota_exceeded"
    assert 0 < int(generate.headers["Retry-After"]) <= 86400
    conversation_id = (await new_conversation(client, headers))["id"]
    chat = await client.post(
        f"{CHAT}/conversations/{conversation_id}/messages", json={"content": "hi"}, headers=headers
    )
    assert chat.status_code == 429 and (await chat.get_json())["code"] == "quota_exceeded"
    streamed = await client.post(
        f"{CHAT}/conversations/{conversation_id}/messages", json={"content": "hi", "stream": True}, headers=headers
    )
    assert streamed.status_code == 429 and (await streamed.get_json())["code"] == "quota_exceeded"
    # The budget is read with the message's write: the refusal rolls the message back, none is stored.
    stored = await client.get(f"{CHAT}/conversations/{conversation_id}/messages", headers=headers)
    assert (await stored.get_json())["items"] == []

    assert len(openai_server.requests) == 2  # nothing reached the provider once the budget was spent
    async with app.extensions["db_session_factory"]() as session:
        usage = await session.scalar(select(LLMUsage).where(LLMUsage.user_id == user_id))
        assert usage is not None and (usage.requests, usage.prompt_tokens, usage.completion_tokens) == (2, 84, 34)


def test_only_the_gateway_hands_out_the_apps_llm() -> None:
    """A feature that took the app's LLM itself would spend tokens the budget never sees."""
    # They build it, wrap it, or say where it lives.
    allowed = {"app.py", "api/guards.py", "jobs/inprocess.py", "jobs/__init__.py", "integrations/llm/__init__.py"}
    backend = Path(__file__).resolve().parents[2] / "backend"
    offenders = [
        str(path.relative_to(backend))
        for path in backend.rglob("*.py")
        if str(path.relative_to(backend)) not in allowed
        and re.search(r'extensions(\.get\(|\[)"llm"|context\.llm\b(?!_for)', path.read_text())
    ]
    assert offenders == []
