"""Sending a message: the student's message stored and committed before the LLM is asked, then the reply."""

from __future__ import annotations

from dataclasses import dataclass, replace

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.db import utcnow
from backend.errors import AppError, GatewayTimeout, ServiceUnavailable, UpstreamError
from backend.integrations.llm import LLM, ChatTurn, LLMError, LLMTimeout, Prompt, Usage
from backend.models import User
from backend.models.chat import Conversation, LLMUsage, Message
from backend.services import tutor_context
from backend.services.chat.conversations import ConversationNotFound, create_conversation, title_from
from backend.services.llm_gateway import BudgetedLLM, BudgetExceeded, QuotaExceeded, seconds_to_midnight
from backend.services.llm_gateway import today as usage_day
from backend.services.prompts import StudentProfile, build_prompt

log = structlog.get_logger(__name__)

HISTORY_MESSAGES = 40  # loaded per message; the token window in prompts.py trims them further


class LLMFailed(UpstreamError):
    code = "llm_error"
    detail = "The AI tutor could not answer. Your message is saved; try again shortly."
    keep_changes = True  # the failed reply is recorded although the request answers 502


class LLMTimedOut(GatewayTimeout):
    code = "llm_timeout"
    detail = "The AI tutor took too long to answer. Your message is saved; try again shortly."
    keep_changes = True


class ReplyNotSaved(ServiceUnavailable):
    detail = "The reply could not be saved (the database is unavailable); your message is kept. Try again shortly."


REPLY_NOT_SAVED = ReplyNotSaved()


def as_app_error(error: LLMError) -> AppError:
    if isinstance(error, BudgetExceeded):
        return error.as_app_error()
    return LLMTimedOut() if isinstance(error, LLMTimeout) else LLMFailed()


def profile_of(user: User) -> StudentProfile:
    return StudentProfile(user.skill_level, user.programming_language, user.career_goals)


def apply_reply(message: Message, text: str, usage: Usage | None, status: str) -> None:
    message.content, message.status = text, status
    if usage is not None:
        message.model = usage.model
        message.prompt_tokens, message.completion_tokens = usage.prompt_tokens, usage.completion_tokens
        message.tokens_used, message.latency_ms = usage.total_tokens, usage.latency_ms


@dataclass(frozen=True)
class Turn:
    """A student's stored message and what the LLM is about to be asked."""

    user_id: int
    conversation_id: int
    user_message: Message
    reply: Message | None  # streams only: the assistant row the stream fills in
    prompt: Prompt


async def _history(session: AsyncSession, conversation_id: int) -> list[ChatTurn]:
    rows = await session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.status != "failed", Message.content != "")
        .order_by(Message.id.desc())
        .limit(HISTORY_MESSAGES)
    )
    return [ChatTurn("user" if m.role == "user" else "assistant", m.content) for m in reversed(list(rows))]


async def _count_messages(
    session: AsyncSession, conversation_id: int, added: int, title: str | None = None, *, tokens_of: int | None = None
) -> int | None:
    """Count `added` messages on the conversation; with `tokens_of`, also answer that user's LLM tokens
    today (the budget), read by the same statement: one round trip for both."""
    now = utcnow()
    values: dict[str, object] = {
        "message_count": Conversation.message_count + added,
        "last_message_at": now,
        "updated_at": now,
    }
    if title is not None:  # an untitled conversation is named after its first message
        values["title"] = func.coalesce(Conversation.title, title)
    statement = update(Conversation).where(Conversation.id == conversation_id).values(**values)
    if tokens_of is None:
        await session.execute(statement)
        return None
    used = (
        select(LLMUsage.prompt_tokens + LLMUsage.completion_tokens)
        .where(LLMUsage.user_id == tokens_of, LLMUsage.day == usage_day())
        .scalar_subquery()
    )
    return (await session.execute(statement.returning(used))).scalar_one() or 0


async def start_turn(
    session: AsyncSession, settings: Settings, user: User, conversation_id: int, content: str, *, is_stream: bool
) -> Turn:
    """Store the student's message (and, for a stream, the reply's row) and COMMIT, before any LLM call."""
    # Ownership and the exercise context in one query: no extra round trip before the first byte.
    found = await tutor_context.load(session, user, conversation_id)
    if found is None:
        raise ConversationNotFound()
    conversation, exercise, learner_summary = found
    history = await _history(session, conversation.id)
    user_message = Message(conversation_id=conversation.id, role="user", content=content, status="complete")
    session.add(user_message)
    reply = None
    if is_stream:
        # `partial` until the stream ends: a crash mid-stream leaves an honest row behind.
        reply = Message(conversation_id=conversation.id, role="assistant", content="", status="partial")
        session.add(reply)
    await session.flush()
    added = 2 if is_stream else 1
    used = await _count_messages(session, conversation.id, added, title_from(content), tokens_of=user.id)
    budget = settings.llm_daily_token_budget
    if budget and used is not None and used >= budget:
        # Checked after the writes so the budget costs no round trip of its own: the 429 rolls them back.
        raise QuotaExceeded(headers={"Retry-After": str(seconds_to_midnight())})
    profile = replace(profile_of(user), learner_summary=learner_summary)
    prompt = build_prompt(profile, history, content, exercise=exercise)
    await session.commit()
    return Turn(user.id, conversation.id, user_message, reply, prompt)


def budget_read(llm: LLM) -> None:
    if isinstance(llm, BudgetedLLM):  # start_turn read today's tokens with its writes, moments ago
        llm.budget_checked()


async def send(
    session: AsyncSession, settings: Settings, llm: LLM, user: User, conversation_id: int, content: str
) -> tuple[Message, Message]:
    """The student's message and the tutor's reply; 502/504 when the LLM fails (the message is kept)."""
    turn = await start_turn(session, settings, user, conversation_id, content, is_stream=False)
    budget_read(llm)
    reply = Message(conversation_id=turn.conversation_id, role="assistant", content="", status="failed")
    try:
        completion = await llm.complete(turn.prompt)
    except LLMError as error:
        log.warning("chat.llm_failed", provider=error.provider, reason=error.reason, stream=False)
        session.add(reply)
        await _count_messages(session, turn.conversation_id, 1)
        await session.flush()
        raise as_app_error(error) from error
    apply_reply(reply, completion.text, completion.usage, "complete")
    session.add(reply)
    await _count_messages(session, turn.conversation_id, 1)
    await session.flush()
    return turn.user_message, reply


async def send_shortcut(
    session: AsyncSession, settings: Settings, llm: LLM, user: User, conversation_id: int | None, content: str
) -> tuple[int, Message]:
    """`POST /chat/message`: into the given conversation, or a new one named after the message."""
    if conversation_id is None:
        conversation_id = (await create_conversation(session, user, title=None, exercise_id=None)).id
    _, reply = await send(session, settings, llm, user, conversation_id, content)
    return conversation_id, reply
