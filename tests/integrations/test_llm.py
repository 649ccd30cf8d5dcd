"""The LLM providers through the official SDKs against fake servers on real sockets, and the offline tutor."""

from __future__ import annotations

import time

import pytest

from backend.integrations.llm import (
    LLM,
    ChatTurn,
    FallbackLLM,
    LLMError,
    LLMTimeout,
    LLMUnavailable,
    Prompt,
    Usage,
    build_provider,
    create_llm,
)
from backend.integrations.llm.anthropic_provider import alternating
from backend.integrations.llm.offline import OfflineTutor
from backend.integrations.llm.tokens import count_tokens
from tests.conftest import make_settings
from tests.fakes.llm_servers import DEFAULT_REPLY, FakeAnthropic, FakeLLMServer, FakeOpenAI

PROMPT = Prompt(
    system="You are a Socratic tutor.",
    messages=(
        ChatTurn("user", "What is a list?"),
        ChatTurn("assistant", "What do you think it is?"),
        ChatTurn("user", "How do I reverse a list in Python?"),
    ),
    skill_level="beginner",
)
TIMEOUT = 0.5


@pytest.fixture(params=["openai", "anthropic"])
def fake(request: pytest.FixtureRequest) -> FakeLLMServer:
    server: FakeLLMServer = request.getfixturevalue(f"{request.param}_server")
    server.reset()
    return server


def provider_for(
    fake: FakeLLMServer, *, max_retries: int = 0, api_key: str | None = None, timeout: float = TIMEOUT
) -> LLM:
    return build_provider(
        fake.name,
        model=fake.model,
        base_url=fake.sdk_base_url,  # type: ignore[attr-defined]
        api_key=api_key or fake.api_key,
        timeout=timeout,
        max_retries=max_retries,
    )


async def collect(llm: LLM, prompt: Prompt = PROMPT) -> tuple[list[str], Usage | None]:
    deltas: list[str] = []
    usage = None
    async for item in llm.stream(prompt):
        if isinstance(item, Usage):
            usage = item
        else:
            deltas.append(item)
    return deltas, usage


# --- real providers --------------------------------------------------------------------------------


async def test_complete_returns_text_and_reported_usage(fake: FakeLLMServer) -> None:
    llm = provider_for(fake)
    completion = await llm.complete(PROMPT)
    await llm.close()
    assert completion.text == DEFAULT_REPLY
    usage = completion.usage
    assert (usage.provider, usage.model, usage.prompt_tokens, usage.completion_tokens) == (
        fake.name,
        fake.model,
        42,
        17,
    )
    assert usage.total_tokens == 59 and usage.latency_ms >= 0


async def test_system_prompt_is_sent_the_providers_way(fake: FakeLLMServer) -> None:
    llm = provider_for(fake)
    await llm.complete(PROMPT)
    await llm.close()
    sent = fake.last_request
    if fake.name == "openai":
        assert sent["messages"][0] == {"role": "system", "content": PROMPT.system}
        assert [m["role"] for m in sent["messages"][1:]] == ["user", "assistant", "user"]
    else:
        assert sent["system"] == PROMPT.system
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["model"] == fake.model and sent["max_tokens"] == PROMPT.max_tokens
    assert fake.auth_headers[-1] == fake.api_key


async def test_stream_yields_deltas_then_usage(fake: FakeLLMServer) -> None:
    llm = provider_for(fake)
    deltas, usage = await collect(llm)
    await llm.close()
    assert len(deltas) > 5 and "".join(deltas) == DEFAULT_REPLY
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.model) == (42, 17, fake.model)
    if fake.name == "openai":
        assert fake.last_request["stream_options"] == {"include_usage": True}


async def test_streams_one_after_another_reuse_one_connection(fake: FakeLLMServer) -> None:
    """A new connection per message would cost every chat reply a TCP and TLS handshake with the provider
    before its first word (the OpenAI SDK's own stream stops reading at `[DONE]` and drops its connection)."""
    llm = provider_for(fake)
    for _ in range(3):
        deltas, usage = await collect(llm)
        assert "".join(deltas) == DEFAULT_REPLY and usage is not None
    await llm.close()
    assert len(fake.client_ports) == 3 and len(set(fake.client_ports)) == 1


async def test_json_mode_asks_for_one_json_object(fake: FakeLLMServer) -> None:
    fake.reply = '{"title": "Two sum"}'
    llm = provider_for(fake)
    completion = await llm.complete(PROMPT, json_mode=True)
    await llm.close()
    assert completion.text == '{"title": "Two sum"}'
    if fake.name == "openai":
        assert fake.last_request["response_format"] == {"type": "json_object"}
    else:
        assert "single JSON object" in fake.last_request["system"]


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_and_rate_limits_are_retryable(fake: FakeLLMServer, status: int) -> None:
    fake.status = status
    llm = provider_for(fake)
    with pytest.raises(LLMUnavailable) as raised:
        await llm.complete(PROMPT)
    with pytest.raises(LLMUnavailable):
        await collect(llm)
    await llm.close()
    assert raised.value.retryable and raised.value.reason == f"http_{status}"


async def test_rejected_key_goes_to_the_fallback_without_asking_again(fake: FakeLLMServer) -> None:
    llm = provider_for(fake, api_key="sk-wrong", max_retries=1)
    with pytest.raises(LLMError) as raised:
        await llm.complete(PROMPT)
    await llm.close()
    assert raised.value.retryable and raised.value.reason == "http_401"  # retryable: the fallback is asked
    assert len(fake.requests) == 1  # this provider is not: the same key fails the same way


async def test_slow_server_is_a_timeout(fake: FakeLLMServer) -> None:
    fake.delay_seconds = TIMEOUT * 10
    llm = provider_for(fake)
    started = time.monotonic()
    with pytest.raises(LLMTimeout):
        await llm.complete(PROMPT)
    with pytest.raises(LLMTimeout):
        await collect(llm)
    await llm.close()
    # Each call ends at TIMEOUT; one that waited for the server would alone take 10 × TIMEOUT. The margin is
    # for a loaded machine (this bound was 4 × TIMEOUT for both calls, and failed once under load).
    assert time.monotonic() - started < TIMEOUT * 8


async def test_outage_is_retried_once_with_backoff_when_it_fits_the_timeout(fake: FakeLLMServer) -> None:
    fake.status = 500
    llm = provider_for(fake, max_retries=1, timeout=5)
    with pytest.raises(LLMUnavailable):
        await llm.complete(PROMPT)
    assert len(fake.requests) == 2  # bounded: the first try and one retry
    short = provider_for(fake, max_retries=1)  # a retry after the backoff would not fit in TIMEOUT
    with pytest.raises(LLMUnavailable):
        await short.complete(PROMPT)
    await llm.close()
    await short.close()
    assert len(fake.requests) == 3


async def test_stream_dropped_midway_raises_after_the_first_deltas(fake: FakeLLMServer) -> None:
    fake.break_after = 3
    llm = provider_for(fake)
    deltas: list[str] = []
    with pytest.raises(LLMUnavailable):
        async for item in llm.stream(PROMPT):
            if isinstance(item, str):
                deltas.append(item)
    await llm.close()
    assert "".join(deltas) == "".join(DEFAULT_REPLY.split(" ")[i] + " " for i in range(3))


async def test_malformed_answers_are_llm_errors(fake: FakeLLMServer) -> None:
    fake.malformed = True
    llm = provider_for(fake)
    with pytest.raises(LLMError) as raised:
        await llm.complete(PROMPT)
    with pytest.raises(LLMError) as raised_in_stream:
        await collect(llm)
    await llm.close()
    assert raised.value.reason == raised_in_stream.value.reason == "bad_response"
    assert not raised.value.retryable


def test_anthropic_messages_start_with_the_user_and_alternate() -> None:
    turns = (
        ChatTurn("assistant", "Hi!"),
        ChatTurn("user", "one"),
        ChatTurn("user", "two"),
        ChatTurn("assistant", "ok"),
    )
    assert alternating(turns) == [
        {"role": "user", "content": "one\n\ntwo"},
        {"role": "assistant", "content": "ok"},
    ]


# --- fallback --------------------------------------------------------------------------------------


async def test_fallback_answers_when_the_primary_fails(
    openai_server: FakeOpenAI, anthropic_server: FakeAnthropic
) -> None:
    openai_server.reset()
    anthropic_server.reset()
    openai_server.status = 500
    anthropic_server.reply = "From the fallback: what have you tried?"
    llm = FallbackLLM(provider_for(openai_server), provider_for(anthropic_server))
    completion = await llm.complete(PROMPT)
    deltas, usage = await collect(llm)
    await llm.close()
    assert completion.text == "".join(deltas) == anthropic_server.reply
    assert completion.usage.provider == "anthropic" and usage is not None and usage.model == anthropic_server.model


async def test_fallback_answers_when_the_primary_times_out(
    openai_server: FakeOpenAI, anthropic_server: FakeAnthropic
) -> None:
    openai_server.reset()
    anthropic_server.reset()
    anthropic_server.delay_seconds = TIMEOUT * 4
    llm = FallbackLLM(provider_for(anthropic_server), provider_for(openai_server))
    completion = await llm.complete(PROMPT)
    await llm.close()
    assert completion.usage.provider == "openai" and completion.text == DEFAULT_REPLY


async def test_fallback_answers_a_rejected_key_but_not_a_bad_request_or_a_broken_stream(
    openai_server: FakeOpenAI, anthropic_server: FakeAnthropic
) -> None:
    openai_server.reset()
    anthropic_server.reset()
    llm = FallbackLLM(provider_for(openai_server, api_key="sk-wrong"), provider_for(anthropic_server))
    assert (await llm.complete(PROMPT)).usage.provider == "anthropic"  # our key is wrong: another may answer
    anthropic_server.reset()
    openai_server.status = 400  # the request itself is refused: the fallback would refuse it too
    llm = FallbackLLM(provider_for(openai_server), provider_for(anthropic_server))
    with pytest.raises(LLMError):
        await llm.complete(PROMPT)
    openai_server.reset()
    openai_server.break_after = 2
    llm = FallbackLLM(provider_for(openai_server), provider_for(anthropic_server))
    with pytest.raises(LLMUnavailable):
        await collect(llm)  # the student already saw text: no second, different answer
    await llm.close()
    assert anthropic_server.requests == []


async def test_both_failing_raises_the_fallbacks_error(
    openai_server: FakeOpenAI, anthropic_server: FakeAnthropic
) -> None:
    openai_server.reset()
    anthropic_server.reset()
    openai_server.status = 500
    anthropic_server.delay_seconds = TIMEOUT * 4
    llm = FallbackLLM(provider_for(openai_server), provider_for(anthropic_server))
    with pytest.raises(LLMTimeout):
        await llm.complete(PROMPT)
    await llm.close()


def test_create_llm_builds_what_the_settings_describe() -> None:
    assert isinstance(create_llm(make_settings()), OfflineTutor)
    llm = create_llm(
        make_settings(
            llm_provider="openai",
            llm_base_url="http://127.0.0.1:9/v1",
            llm_fallback_provider="anthropic",
            llm_fallback_model="claude-x",
        )
    )
    assert isinstance(llm, FallbackLLM)
    assert (llm.primary.provider, llm.fallback.provider, llm.fallback.model) == ("openai", "anthropic", "claude-x")


# --- offline tutor ---------------------------------------------------------------------------------


def prompt_with(message: str, *, level: str | None = "beginner", hint: str | None = None) -> Prompt:
    return Prompt(system="ignored", messages=(ChatTurn("user", message),), skill_level=level, hint=hint)


async def test_offline_replies_are_deterministic_socratic_and_honest() -> None:
    tutor = OfflineTutor()
    first = await tutor.complete(prompt_with("How does `zip` work in Python?"))
    second = await tutor.complete(prompt_with("How does `zip` work in Python?"))
    assert first == second or (first.text == second.text and first.usage.model == second.usage.model)
    assert first.usage.model == "offline" and first.usage.provider == "offline"
    assert "`zip`" in first.text and "?" in first.text and "Offline tutor" in first.text
    assert first.usage.prompt_tokens == 0 and first.usage.completion_tokens == count_tokens(first.text)


async def test_offline_reply_follows_the_message_level_and_hint() -> None:
    tutor = OfflineTutor()
    code = (await tutor.complete(prompt_with("def f(x):\n    return x +"))).text
    error = (await tutor.complete(prompt_with("I get a TypeError exception"))).text
    stuck = (await tutor.complete(prompt_with("I'm stuck on recursion"))).text
    hinted = (await tutor.complete(prompt_with("help", hint="Think about the base case first."))).text
    expert = (await tutor.complete(prompt_with("What is a monad?", level="expert"))).text
    assert "what do you expect it to do" in code
    assert "last line of the error" in error
    assert "stuck on recursion" in stuck
    assert "Think about the base case first." in hinted
    assert expert.startswith("Let's look at it from first principles.")
    assert len({code, error, stuck, hinted, expert}) == 5


async def test_offline_stream_concatenates_to_its_complete_reply() -> None:
    tutor = OfflineTutor()
    prompt = prompt_with("What is a closure?")
    deltas, usage = await collect(tutor, prompt)
    assert len(deltas) > 10 and "".join(deltas) == (await tutor.complete(prompt)).text
    assert usage is not None and usage.model == "offline"
