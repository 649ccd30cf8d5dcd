"""The tutor sees the student's work: exercise conversations, asserted on what the fake LLM servers
received (and on the offline tutor's reply), through the real app and the real sandbox."""

from __future__ import annotations

import json
from typing import Any

from quart import Quart
from quart.testing import QuartClient

from tests.api.test_chat import CHAT, llm_settings, new_conversation, parse_sse, send
from tests.api.test_exercises import EXERCISES, HIDDEN_CALLS, HINTS, SOLUTION, add_exercise, sign_in, submit
from tests.conftest import AppFactory
from tests.fakes.llm_servers import FakeAnthropic, FakeOpenAI

# Passes "zero" ([0][0] is 0), raises IndexError on every other test, hidden ones included.
INDEXING = "def add_numbers(first, second):\n    return [first][second]\n"
SYNTAX_ERROR = "def add_numbers(first, second):\n    return first +\n"


def system_of(request: dict[str, Any]) -> str:
    """The system prompt as each wire format carries it."""
    if "system" in request:  # Anthropic
        system = request["system"]
        return system if isinstance(system, str) else "".join(block["text"] for block in system)
    return request["messages"][0]["content"]


def assert_exercise_context(system: str) -> None:
    assert "Add two numbers" in system and "add_numbers(first, second)" in system
    assert "add_numbers(1, 2)" in system  # a visible example
    assert "negative first" in system and "IndexError" in system  # a hidden test's name and failure kind
    assert "[first][second]" in system  # the student's code
    assert HINTS[0] in system  # the hint already given
    assert "Never hand over a full solution" in system
    assert "Weak topics: math" in system  # the learner model's summary, after a failed submission
    assert "return first + second" not in system  # the reference solution
    for call in HIDDEN_CALLS:  # hidden inputs
        assert call not in system
    assert "3345" not in system and "-11" not in system  # hidden expected values


async def test_exercise_conversation_prompt_has_exercise_submission_and_hints_never_secrets(
    make_app: AppFactory, openai_server: FakeOpenAI, anthropic_server: FakeAnthropic
) -> None:
    for fake, stream in ((openai_server, False), (anthropic_server, True)):
        fake.reset()
        app = await make_app(**llm_settings(fake))
        client = app.test_client()
        headers, _ = await sign_in(client)
        exercise_id = await add_exercise(app)
        assert (await submit(client, headers, exercise_id, INDEXING))["submission"]["status"] == "failed"
        assert (await client.post(f"{EXERCISES}/{exercise_id}/hint", json={}, headers=headers)).status_code == 200
        hint_request = json.dumps(fake.requests[-1])
        assert "The hint to adapt" in hint_request and "Weak topics: math" in hint_request  # the learner model
        assert "return first + second" not in hint_request
        conversation = await new_conversation(client, headers, exercise_id=exercise_id)
        fake.requests.clear()

        response = await send(client, headers, conversation["id"], "I am stuck on this one", stream=stream)
        assert response.status_code == (200 if stream else 201)
        if stream:
            assert parse_sse(await response.get_data(as_text=True))[-1][0] == "done"
        [request] = fake.requests
        assert_exercise_context(system_of(request))


async def test_conversation_started_from_a_submission_discusses_that_submission(
    make_app: AppFactory, openai_server: FakeOpenAI
) -> None:
    openai_server.reset()
    app = await make_app(**llm_settings(openai_server))
    client = app.test_client()
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    failed = (await submit(client, headers, exercise_id, INDEXING))["submission"]
    assert (await submit(client, headers, exercise_id, SOLUTION))["submission"]["status"] == "passed"

    conversation = await new_conversation(client, headers, submission_id=failed["id"])
    assert conversation["context_type"] == "exercise" and conversation["exercise_id"] == exercise_id
    assert conversation["submission_id"] == failed["id"]
    assert (await send(client, headers, conversation["id"], "Why did this fail?")).status_code == 201
    system = system_of(openai_server.last_request)
    assert "[first][second]" in system and "IndexError" in system  # the older, failed one
    assert "return first + second" not in system  # not the passing (solution-like) latest one

    other_headers, _ = await sign_in(client)
    for body, status in (
        ({"submission_id": failed["id"]}, 404),  # someone else's submission
        ({"submission_id": failed["id"], "exercise_id": exercise_id + 999}, 422),
    ):
        who = other_headers if status == 404 else headers
        response = await client.post(f"{CHAT}/conversations", json=body, headers=who)
        assert response.status_code == status, await response.get_json()
    private = await add_exercise(app, visibility="private", generated_by_ai=True, author_id=None)
    response = await client.post(f"{CHAT}/conversations", json={"exercise_id": private}, headers=headers)
    assert response.status_code == 404 and (await response.get_json())["code"] == "not_found"


async def test_offline_tutor_names_the_failing_test_kind_line_and_next_hint(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app)
    await submit(client, headers, exercise_id, INDEXING)
    conversation = await new_conversation(client, headers, exercise_id=exercise_id)
    body = await (await send(client, headers, conversation["id"], "why does it fail?")).get_json()
    reply = body["assistant_message"]
    assert reply["model"] == "offline"
    assert '"small"' in reply["content"] and "IndexError" in reply["content"]
    assert HINTS[0] in reply["content"]  # the next authored hint (none used yet)
    assert "3345" not in reply["content"] and "return first + second" not in reply["content"]

    await submit(client, headers, exercise_id, SYNTAX_ERROR)
    assert (await client.post(f"{EXERCISES}/{exercise_id}/hint", json={}, headers=headers)).status_code == 200
    body = await (await send(client, headers, conversation["id"], "and now?")).get_json()
    text = body["assistant_message"]["content"]
    assert "SyntaxError" in text and "line 2" in text and HINTS[1] in text and HINTS[0] not in text
    assert json.dumps(text)  # plain text, nothing else
