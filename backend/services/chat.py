"""Conversations with the AI tutor: ownership, history, sending messages, usage and the daily budget.

A message is sent in two steps so that no transaction is open while the LLM thinks: `start_turn`
stores the student's message and commits (it must survive an LLM failure, and on SQLite an open write
transaction would lock the database for everyone); the reply is then stored by the request
(`send`, non-streamed) or, for a stream, by `stream_turn` through short sessions of its own, because
the request's session is gone before the first byte of a streamed response is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, replace

import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.db import utcnow
from backend.errors import (
    AppError,
    GatewayTimeout,
    NotFound,
    ServiceUnavailable,
    UpstreamError,
    ValidationFailed,
)
from backend.integrations.llm import LLM, ChatTurn, LLMError, LLMTimeout, Prompt, Usage
from backend.integrations.llm.tokens import count_prompt_tokens, count_tokens
from backend.models import User
from backend.models.chat import Conversation, LLMUsage, Message
from backend.schemas.users import strip_html
from backend.services import exercises as exercises_service
from backend.services import tutor_context
from backend.services.llm_gateway import BudgetedLLM, BudgetExceeded, QuotaExceeded, seconds_to_midnight
from backend.services.llm_gateway import today as usage_day
from backend.services.prompts import StudentProfile, build_prompt

log = structlog.get_logger(__name__)

HISTORY_MESSAGES = 40  # loaded per message; the token window in prompts.py trims them further
TITLE_WORDS = 8
TITLE_CHARS = 80


class ConversationNotFound(NotFound):
    detail = "Conversation not found."


class SubmissionNotFound(NotFound):
    detail = "Submission not found."


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


def title_from(text: str) -> str:
    """A title from the first words of the first message (backticks and fences dropped), as plain text
    like a title the user types (the message itself is stored verbatim: it carries code)."""
    try:
        text = strip_html(text)
    except ValueError:
        text = ""
    words = text.replace("`", " ").split()
    title = " ".join(words[:TITLE_WORDS])
    if len(words) > TITLE_WORDS:
        title += "…"
    return title[:TITLE_CHARS] or "New conversation"


def profile_of(user: User) -> StudentProfile:
    return StudentProfile(user.skill_level, user.programming_language, user.career_goals)


# --- conversations ---------------------------------------------------------------------------------


async def create_conversation(
    session: AsyncSession, user: User, *, title: str | None, exercise_id: int | None, submission_id: int | None = None
) -> Conversation:
    """A general conversation, or one about an exercise the user may see, or about one of their
    submissions (its exercise implied); 404 for anyone else's, 422 when the two disagree."""
    if submission_id is not None:
        submission = await tutor_context.submission_for_conversation(session, user, submission_id)
        if submission is None:
            raise SubmissionNotFound()
        if exercise_id is not None and exercise_id != submission.exercise_id:
            raise ValidationFailed(
                "exercise_id is not the exercise of that submission.",
                errors=[{"field": "exercise_id", "message": "Must match the submission's exercise (or be omitted)."}],
            )
        exercise_id = submission.exercise_id
    if exercise_id is not None:
        await exercises_service.get_visible(session, user, exercise_id)
    conversation = Conversation(
        user_id=user.id,
        title=title,
        exercise_id=exercise_id,
        submission_id=submission_id,
        context_type="exercise" if exercise_id is not None else "general",
    )
    session.add(conversation)
    await session.flush()
    return conversation


async def list_conversations(
    session: AsyncSession, user: User, *, limit: int, offset: int
) -> tuple[list[Conversation], int]:
    """Most recent activity first: the last message, else the creation."""
    total = await session.scalar(select(func.count()).where(Conversation.user_id == user.id)) or 0
    rows = await session.scalars(
        select(Conversation)
        .where(Conversation.user_id == user.id)
        .order_by(func.coalesce(Conversation.last_message_at, Conversation.created_at).desc(), Conversation.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


async def get_owned(session: AsyncSession, user: User, conversation_id: int) -> Conversation:
    """A conversation of `user`; someone else's is indistinguishable from a missing one."""
    conversation = await session.scalar(
        select(Conversation).where(Conversation.id == conversation_id, Conversation.user_id == user.id)
    )
    if conversation is None:
        raise ConversationNotFound()
    return conversation


async def rename_conversation(session: AsyncSession, user: User, conversation_id: int, title: str) -> Conversation:
    conversation = await get_owned(session, user, conversation_id)
    conversation.title = title
    await session.flush()
    return conversation


async def delete_conversation(session: AsyncSession, user: User, conversation_id: int) -> None:
    conversation = await get_owned(session, user, conversation_id)
    # The messages go with it (ON DELETE CASCADE), without loading them.
    await session.execute(delete(Conversation).where(Conversation.id == conversation.id))


async def list_messages(
    session: AsyncSession, user: User, conversation_id: int, *, limit: int, before_id: int | None
) -> tuple[list[Message], bool]:
    """The newest `limit` messages older than `before_id` (or the newest overall), oldest first."""
    conversation = await get_owned(session, user, conversation_id)
    query = select(Message).where(Message.conversation_id == conversation.id)
    if before_id is not None:
        query = query.where(Message.id < before_id)
    rows = list(await session.scalars(query.order_by(Message.id.desc()).limit(limit + 1)))
    has_more = len(rows) > limit
    return rows[:limit][::-1], has_more


# --- budget and usage (the gateway checks and records every LLM call; see services/llm_gateway.py) ----


def apply_reply(message: Message, text: str, usage: Usage | None, status: str) -> None:
    message.content, message.status = text, status
    if usage is not None:
        message.model = usage.model
        message.prompt_tokens, message.completion_tokens = usage.prompt_tokens, usage.completion_tokens
        message.tokens_used, message.latency_ms = usage.total_tokens, usage.latency_ms


# --- sending ---------------------------------------------------------------------------------------


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


def _budget_read(llm: LLM) -> None:
    if isinstance(llm, BudgetedLLM):  # start_turn read today's tokens with its writes, moments ago
        llm.budget_checked()


async def send(
    session: AsyncSession, settings: Settings, llm: LLM, user: User, conversation_id: int, content: str
) -> tuple[Message, Message]:
    """The student's message and the tutor's reply; 502/504 when the LLM fails (the message is kept)."""
    turn = await start_turn(session, settings, user, conversation_id, content, is_stream=False)
    _budget_read(llm)
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


# --- streaming -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    user_message_id: int
    assistant_message_id: int


@dataclass(frozen=True)
class Delta:
    content: str


@dataclass(frozen=True)
class Done:
    assistant_message: Message


@dataclass(frozen=True)
class Failed:
    code: str
    detail: str


StreamEvent = Started | Delta | Done | Failed


async def _finish_stream(
    session_factory: async_sessionmaker[AsyncSession], turn: Turn, text: str, usage: Usage | None, status: str
) -> Message:
    assert turn.reply is not None
    async with session_factory() as session:
        reply = await session.get_one(Message, turn.reply.id)
        apply_reply(reply, text, usage, status)
        await session.commit()
    return reply


async def _store_reply(
    session_factory: async_sessionmaker[AsyncSession], turn: Turn, text: str, usage: Usage | None, status: str
) -> Message | None:
    """`_finish_stream`, or None when the database cannot take it (gone, pool exhausted): the stream is
    already open, so the failure must become an `error` event rather than escape and cut the stream."""
    try:
        return await _finish_stream(session_factory, turn, text, usage, status)
    except (SQLAlchemyError, OSError, TimeoutError) as error:
        log.error("chat.store_failed", error_type=type(error).__name__, status=status)
        return None


def _estimated_usage(llm: LLM, turn: Turn, text: str, started: float) -> Usage | None:
    """What a stream cut short cost: the provider never sent its count, so estimate it."""
    if not text:
        return None
    return Usage(
        llm.provider,
        llm.model,
        count_prompt_tokens(turn.prompt.system, turn.prompt.messages),
        count_tokens(text),
        round((time.perf_counter() - started) * 1000),
    )


async def stream_turn(
    session_factory: async_sessionmaker[AsyncSession], llm: LLM, turn: Turn
) -> AsyncGenerator[StreamEvent, None]:
    """Relay the reply as it comes and store it when it ends: `complete`, or `partial` when the LLM breaks
    off (an error event follows) or the client goes away (Quart cancels us; nothing is sent after)."""
    assert turn.reply is not None
    yield Started(turn.user_message.id, turn.reply.id)
    started = time.perf_counter()
    parts: list[str] = []
    usage: Usage | None = None
    _budget_read(llm)  # `turn` comes from start_turn
    try:
        async with aclosing(llm.stream(turn.prompt)) as items:
            async for item in items:
                if isinstance(item, Usage):
                    usage = item
                else:
                    parts.append(item)
                    yield Delta(item)
    except Exception as error:
        if isinstance(error, LLMError):
            log.warning("chat.llm_failed", provider=error.provider, reason=error.reason, stream=True, sent=len(parts))
            failure = as_app_error(error)
        else:  # a bug of ours: still store what the student saw, and end the stream properly
            log.exception("chat.stream_failed", exc_info=error)
            failure = AppError(code="internal_error", detail="An unexpected error occurred; try again.")
        text = "".join(parts)
        status = "partial" if text else "failed"
        await _store_reply(session_factory, turn, text, _estimated_usage(llm, turn, text, started), status)
        yield Failed(failure.code, failure.detail)
        return
    except (asyncio.CancelledError, GeneratorExit):
        text = "".join(parts)
        log.info("chat.stream_abandoned", sent=len(parts))
        # Shielded: the store finishes even if the server cancels this task again while it runs.
        await asyncio.shield(
            _finish_stream(session_factory, turn, text, _estimated_usage(llm, turn, text, started), "partial")
        )
        raise
    reply = await _store_reply(session_factory, turn, "".join(parts), usage, "complete")
    if reply is None:
        yield Failed(REPLY_NOT_SAVED.code, REPLY_NOT_SAVED.detail)
        return
    yield Done(reply)


# --- export ----------------------------------------------------------------------------------------


async def export_conversations(session: AsyncSession, user: User) -> list[dict[str, object]]:
    """Every conversation of `user` with its messages, oldest first (for GET /users/me/export)."""
    conversations = list(
        await session.scalars(select(Conversation).where(Conversation.user_id == user.id).order_by(Conversation.id))
    )
    messages = await session.scalars(
        select(Message)
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(Conversation.user_id == user.id)
        .order_by(Message.id)
    )
    by_conversation: dict[int, list[dict[str, object]]] = {conversation.id: [] for conversation in conversations}
    for message in messages:
        by_conversation[message.conversation_id].append(
            {
                "id": message.id,
                "role": message.role,
                "content": message.content,
                "status": message.status,
                "model": message.model,
                "tokens_used": message.tokens_used,
                "created_at": message.created_at.isoformat(),
            }
        )
    return [
        {
            "id": conversation.id,
            "title": conversation.title,
            "context_type": conversation.context_type,
            "exercise_id": conversation.exercise_id,
            "submission_id": conversation.submission_id,
            "created_at": conversation.created_at.isoformat(),
            "messages": by_conversation[conversation.id],
        }
        for conversation in conversations
    ]


async def export_llm_usage(session: AsyncSession, user: User) -> list[dict[str, object]]:
    rows = await session.scalars(select(LLMUsage).where(LLMUsage.user_id == user.id).order_by(LLMUsage.day))
    return [
        {
            "day": row.day.isoformat(),
            "requests": row.requests,
            "prompt_tokens": row.prompt_tokens,
            "completion_tokens": row.completion_tokens,
        }
        for row in rows
    ]
