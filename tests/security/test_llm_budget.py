"""The daily LLM token budget holds on every feature that calls the LLM, not only chat."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from backend.app import create_app
from backend.cache import Cache, create_cache
from backend.config import Settings
from backend.integrations.llm import LLM, Completion, LLMError, Prompt, StreamItem
from backend.models.chat import LLMUsage
from backend.services.llm_gateway import HOLD_TTL_TIMEOUTS, BudgetedLLM, BudgetExceeded, today
from tests.api.test_chat import llm_settings, new_conversation
from tests.api.test_exercises import EXERCISES, HINTS, SOLUTION, add_exercise, sign_in, submit
from tests.conftest import AppFactory, make_settings
from tests.fakes.llm_servers import FakeOpenAI
from tests.helpers import PASSWORD, bearer, unique_email
from tests.servers import serving

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


async def test_a_stream_the_client_drops_midway_is_still_counted(
    stack_settings: Settings, openai_server: FakeOpenAI
) -> None:
    """Hanging up after the first words must not make the rest of the reply free: the real server
    (Hypercorn on a socket) counts what the provider generated, estimated since no usage chunk came."""
    openai_server.reset()
    openai_server.reply = " ".join(f"word{number}" for number in range(60))
    openai_server.chunk_delay = 0.05
    app = create_app(stack_settings.model_copy(update=llm_settings(openai_server)))
    async with serving(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        body = {"email": unique_email(), "password": PASSWORD, "name": "Hangs Up"}
        payload = (await http.post("/api/v1/auth/register", json=body)).json()
        user_id, headers = payload["user"]["id"], bearer(payload)
        conversation_id = (await http.post(f"{CHAT}/conversations", json={}, headers=headers)).json()["id"]
        url = f"{CHAT}/conversations/{conversation_id}/messages/stream"
        async with http.stream("POST", url, json={"content": "go"}, headers=headers) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data: ") and '"content"' in line:
                    break  # leaving the block closes the connection mid-stream
        for _ in range(100):  # the server notices, stops the upstream and records what it cost
            async with app.extensions["db_session_factory"]() as session:
                usage = await session.scalar(select(LLMUsage).where(LLMUsage.user_id == user_id))
            if usage is not None:
                break
            await asyncio.sleep(0.05)
    assert usage is not None and usage.requests == 1
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0


async def test_parallel_messages_cannot_all_pass_a_budget_none_has_counted_yet(
    make_app: AppFactory, openai_server: FakeOpenAI
) -> None:
    """Today's tokens are written when a call ends: ten messages sent at once used to read the same total,
    all pass and all be answered (590 tokens against a budget of 100, one call costing 59). A call is now
    refused while the calls in flight could already reach the budget; the first one is still asked."""
    openai_server.reset()
    openai_server.delay_seconds = 2.0  # every call is still in flight when the others are checked, even under load
    settings = llm_settings(openai_server) | {"llm_timeout_seconds": 10.0}  # the delay is not a timeout
    app = await make_app(**settings, llm_daily_token_budget=100)
    client = app.test_client()
    headers, user_id = await sign_in(client)
    conversations = [(await new_conversation(client, headers))["id"] for _ in range(10)]

    answers = await asyncio.gather(
        *(
            client.post(f"{CHAT}/conversations/{conversation}/messages", json={"content": "hi"}, headers=headers)
            for conversation in conversations
        )
    )

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [429] * 9, statuses
    for answer in answers:
        if answer.status_code == 429:
            assert (await answer.get_json())["code"] == "quota_exceeded"
    assert len(openai_server.requests) == 1
    async with app.extensions["db_session_factory"]() as session:
        usage = await session.scalar(select(LLMUsage).where(LLMUsage.user_id == user_id))
    assert usage is not None and usage.requests == 1


@pytest.mark.parametrize("rate_limits", [True, False], ids=["hold-with-the-rate-limits", "hold-alone"])
async def test_two_app_instances_on_one_redis_share_the_calls_in_flight(
    clean_postgres: str, clean_redis: str, openai_server: FakeOpenAI, rate_limits: bool
) -> None:
    """The hold of the calls in flight lives in Redis, not in a process: two app instances (two of
    WORKERS=N, or a server and an arq worker) answer one message of a burst between them, not one each."""
    openai_server.reset()
    openai_server.delay_seconds = 2.0
    settings = make_settings(
        database_url=clean_postgres,
        redis_url=clean_redis,
        llm_daily_token_budget=100,
        rate_limits_enabled=rate_limits,  # the chat takes its hold in the rate limits' round trip, or alone
        **llm_settings(openai_server) | {"llm_timeout_seconds": 10.0},
    )
    async with AsyncExitStack() as stack:
        apps = [create_app(settings) for _ in range(2)]
        for app in apps:
            await stack.enter_async_context(app.test_app())
        first, second = (app.test_client() for app in apps)
        headers, user_id = await sign_in(first)
        conversations = [(await new_conversation(first, headers))["id"] for _ in range(10)]

        answers = await asyncio.gather(
            *(
                (first if number % 2 else second).post(
                    f"{CHAT}/conversations/{conversation}/messages", json={"content": "hi"}, headers=headers
                )
                for number, conversation in enumerate(conversations)
            )
        )

        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201] + [429] * 9, statuses
        assert len(openai_server.requests) == 1
        # Every call gave its hold back: the refused ones at once, the answered one when it ended; and a
        # turn that never reached the LLM (a 404, or over the rate limit of 10 a minute unless a new minute
        # began) gives back the hold it took alongside its read.
        refused = await second.post(f"{CHAT}/conversations/999999/messages", json={"content": "hi"}, headers=headers)
        assert refused.status_code in ((404, 429) if rate_limits else (404,))
        assert len(openai_server.requests) == 1
        assert await apps[0].extensions["cache"].get(f"llm:held:{user_id}:{today().isoformat()}") is None


class HangingLLM(LLM):
    """Fails at once (`fail`) or never finishes: what a call holds while it runs, and gives back after."""

    provider, model = "fake", "fake-model"

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.started = asyncio.Event()

    async def complete(self, prompt: Prompt, *, json_mode: bool = False) -> Completion:
        self.started.set()
        if self.fail:
            raise LLMError("http_400", provider=self.provider)
        await asyncio.sleep(3600)
        raise AssertionError("never answers")

    async def stream(self, prompt: Prompt) -> AsyncGenerator[StreamItem, None]:
        self.started.set()
        if self.fail:
            raise LLMError("http_400", provider=self.provider)
        yield "Hel"
        await asyncio.sleep(3600)


@pytest.fixture(params=["memory", "redis"])
def hold_cache_url(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "memory" else request.getfixturevalue("clean_redis")


@pytest.fixture
async def hold_cache(hold_cache_url: str | None) -> AsyncIterator[Cache]:
    cache = create_cache(hold_cache_url)  # Redis comes wrapped in ResilientCache, as the app gets it
    yield cache
    await cache.close()


def budgeted(llm: LLM, cache: Cache, user_id: int) -> BudgetedLLM:
    """A gateway that skips the database: today's tokens (900 of 1000) given as the chat reads them."""
    settings = make_settings(llm_daily_token_budget=1000)
    gateway = BudgetedLLM(llm, None, settings, user_id, cache)  # type: ignore[arg-type]
    gateway.budget_checked(900)
    gateway.hold_usage()  # what a call costs is kept, not written
    return gateway


async def test_a_call_that_fails_or_is_cancelled_gives_its_hold_back(hold_cache: Cache) -> None:
    key = f"llm:held:7:{today().isoformat()}"
    prompt = Prompt(system="", messages=(), max_tokens=300)

    with pytest.raises(LLMError):
        await budgeted(HangingLLM(fail=True), hold_cache, 7).complete(prompt)
    assert await hold_cache.get(key) is None

    hanging = HangingLLM()
    call = asyncio.create_task(budgeted(hanging, hold_cache, 7).complete(prompt))
    await hanging.started.wait()
    assert await hold_cache.get(key) == "300"
    with pytest.raises(BudgetExceeded):  # 900 used + 300 in flight reach the budget of 1000
        await budgeted(HangingLLM(), hold_cache, 7).complete(prompt)
    assert await hold_cache.get(key) == "300"  # the refused call holds nothing
    call.cancel()  # the request went away
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await hold_cache.get(key) is None

    stream = budgeted(HangingLLM(), hold_cache, 7).stream(prompt)
    assert await anext(stream) == "Hel"
    assert await hold_cache.get(key) == "300"
    await stream.aclose()  # the client dropped the stream
    assert await hold_cache.get(key) is None


async def test_a_hold_left_by_a_crashed_worker_expires(hold_cache: Cache) -> None:
    """A process killed mid-call never gives its hold back: it lapses HOLD_TTL_TIMEOUTS LLM timeouts after
    it was taken, and the calls refused meanwhile do not extend it."""
    prompt = Prompt(system="", messages=(), max_tokens=300)
    # What a process killed mid-call leaves behind, with LLM_TIMEOUT_SECONDS=0.1:
    await hold_cache.add(f"llm:held:8:{today().isoformat()}", 300, HOLD_TTL_TIMEOUTS * 0.1)
    with pytest.raises(BudgetExceeded):
        await budgeted(HangingLLM(), hold_cache, 8).complete(prompt)
    await asyncio.sleep(HOLD_TTL_TIMEOUTS * 0.1 / 2)
    with pytest.raises(BudgetExceeded):  # refused again, and the refusal did not extend the hold
        await budgeted(HangingLLM(), hold_cache, 8).complete(prompt)
    await asyncio.sleep(HOLD_TTL_TIMEOUTS * 0.1 / 2 + 0.15)
    with pytest.raises(LLMError):  # asked: the provider's own failure, not the budget's
        await budgeted(HangingLLM(fail=True), hold_cache, 8).complete(prompt)
