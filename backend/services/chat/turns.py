"""Sending a message: one read, the LLM asked, the student's message stored while it starts, the reply.

Before the LLM is asked there is one query and no transaction (the routes that send are `@read_only`):
the conversation's ownership, its exercise context, the learner summary, the history and today's tokens
(services/tutor_context.py, with two columns of ours). Over the daily budget it is a 429 and nothing is
written. Then the LLM request starts and, meanwhile, the student's message (with a stream, also the
reply's row) is written and committed in a short transaction of its own; the answer is read only once
that commit is done, so a slow or failing LLM can never lose the message, and a failed write cancels
the LLM request (docs/PERFORMANCE.md, the chat turn).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, replace
from typing import Any, cast

import structlog
from sqlalchemy import JSON, ColumnElement, CursorResult, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.db import ReadStatement, UTCDateTime, fetch, utcnow
from backend.errors import AppError, GatewayTimeout, ServiceUnavailable, UpstreamError
from backend.integrations.llm import LLM, ChatTurn, LLMError, LLMTimeout, Prompt, Usage
from backend.integrations.sandbox.languages import graded
from backend.models import User
from backend.models.chat import Conversation, LLMUsage, Message
from backend.services import tutor_context
from backend.services.chat.conversations import ConversationNotFound, create_conversation, title_from
from backend.services.llm_gateway import BudgetedLLM, BudgetExceeded, QuotaExceeded, check_budget, seconds_to_midnight
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


def reply_values(text: str, usage: Usage | None, status: str) -> dict[str, Any]:
    """A reply's columns: its text and status, and what it cost when that is known."""
    values: dict[str, Any] = {"content": text, "status": status}
    if usage is not None:
        values |= {
            "model": usage.model,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "tokens_used": usage.total_tokens,
            "latency_ms": usage.latency_ms,
        }
    return values


@dataclass(frozen=True)
class Prepared:
    """A message the user may send (their conversation, budget left) and what the LLM is to be asked."""

    conversation_id: int
    content: str
    prompt: Prompt
    tokens_used: int = 0  # today's, read with the conversation (the budget's check of the LLM call)


@dataclass(frozen=True)
class Stored:
    user_message: Message
    reply: Message | None  # streams only: the assistant row the stream fills in (`partial` until it ends)


def _history(dialect: str) -> ColumnElement[Any]:
    """The newest usable messages as one JSON array of `[id, role, content]` (in no particular order), so
    the history comes back in the same row as the conversation."""
    recent = (
        select(Message.id, Message.role, Message.content)
        .where(
            Message.conversation_id == bindparam("conversation_id"), Message.status != "failed", Message.content != ""
        )
        .order_by(Message.id.desc())
        .limit(HISTORY_MESSAGES)
        .subquery()
    )
    if dialect == "postgresql":
        rows = func.json_agg(func.json_build_array(recent.c.id, recent.c.role, recent.c.content), type_=JSON)
    else:
        rows = func.json_group_array(func.json_array(recent.c.id, recent.c.role, recent.c.content), type_=JSON)
    return select(rows).scalar_subquery()


def _tokens_today() -> ColumnElement[Any]:
    return (
        select(LLMUsage.prompt_tokens + LLMUsage.completion_tokens)
        .where(LLMUsage.user_id == bindparam("user_id"), LLMUsage.day == bindparam("day"))
        .scalar_subquery()
    )


@functools.lru_cache(maxsize=8)
def _turn_statement(dialect: str, graded_languages: tuple[str, ...]) -> ReadStatement:
    """Built once per process (and set of graded languages): building it cost more than running it."""
    return ReadStatement(tutor_context.statement(graded_languages, also=(_history(dialect), _tokens_today())))


async def prepare_turn(
    connection: AsyncConnection, settings: Settings, user: User, conversation_id: int, content: str
) -> Prepared:
    """One query, through the driver: 404 for a conversation that is not the user's, 429 over the daily
    token budget (nothing written either way); else the prompt. `connection` reads outside a transaction
    (`db.read_connection()`); the caller then gives it back (`db.end_reads()`), so none is held while the
    LLM thinks."""
    query = _turn_statement(connection.dialect.name, tuple(graded()))
    values = {"user_id": user.id, "conversation_id": conversation_id, "day": usage_day()}
    rows = await fetch(connection, query, values)
    found = tutor_context.loaded(rows[0] if rows else None)
    if found is None:
        raise ConversationNotFound()
    rows, tokens = found.also
    budget = settings.llm_daily_token_budget
    if budget and (tokens or 0) >= budget:
        raise QuotaExceeded(headers={"Retry-After": str(seconds_to_midnight())})
    turns = [ChatTurn("user" if role == "user" else "assistant", text) for _, role, text in sorted(rows or [])]
    profile = replace(profile_of(user), learner_summary=found.learner_summary)
    prompt = build_prompt(profile, turns, content, exercise=found.exercise)
    return Prepared(conversation_id, content, prompt, tokens or 0)


async def _count_messages(
    session: AsyncSession, conversation_id: int, added: int, *, title: str | None = None, owner: int | None = None
) -> bool:
    """Count `added` messages on the conversation (of `owner`, when given); False when there is none."""
    now = utcnow()
    values: dict[str, object] = {
        "message_count": Conversation.message_count + added,
        "last_message_at": now,
        "updated_at": now,
    }
    if title is not None:  # an untitled conversation is named after its first message
        values["title"] = func.coalesce(Conversation.title, title)
    statement = update(Conversation).where(Conversation.id == conversation_id).values(**values)
    if owner is not None:
        statement = statement.where(Conversation.user_id == owner)
    return cast(CursorResult[Any], await session.execute(statement)).rowcount > 0


# PostgreSQL: the conversation counted (still the user's; the UPDATE locks its row) and the message, with a
# stream also the reply's row, inserted by one statement that commits on its own (the connection is in
# AUTOCOMMIT): one round trip instead of BEGIN, UPDATE, INSERT, COMMIT. The ids are drawn in the order of
# the VALUES rows, so the student's message always comes before its reply.
_STORE_SQL = """
WITH counted AS (
    UPDATE conversations
    SET message_count = message_count + {added}, last_message_at = :now, updated_at = :now,
        title = coalesce(title, :title)
    WHERE id = :conversation_id AND user_id = :user_id
    RETURNING id
)
INSERT INTO messages (id, conversation_id, role, content, status, prompt_tokens, completion_tokens, tokens_used,
                      created_at)
SELECT new.id, counted.id, new.role, new.content, new.status, 0, 0, 0, :now
FROM counted CROSS JOIN (VALUES {rows}) AS new (id, role, content, status)
RETURNING id, conversation_id, role, content, status, model, prompt_tokens, completion_tokens, tokens_used,
          latency_ms, created_at
"""
_NEXT_ID = "nextval(pg_get_serial_sequence('messages', 'id'))"
_STORE_STATEMENTS = {
    is_stream: text(
        _STORE_SQL.format(
            added=2 if is_stream else 1,
            rows=f"({_NEXT_ID}, 'user', CAST(:content AS TEXT), 'complete')"
            + (f", ({_NEXT_ID}, 'assistant', '', 'partial')" if is_stream else ""),
        )
    ).bindparams(bindparam("now", type_=UTCDateTime()))
    for is_stream in (False, True)
}


async def store_turn(
    session_factory: async_sessionmaker[AsyncSession],
    prepared: Prepared,
    user_id: int,
    *,
    is_stream: bool,
    connection: AsyncConnection | None = None,
) -> Stored:
    """The student's message (with a stream, also the reply's row) and the conversation's count, committed
    in a transaction of its own. The conversation row is updated first, still the user's (it locks the
    row): one deleted since `prepare_turn` read it is a 404. `connection`: one outside any transaction
    (the request's reads'), for PostgreSQL's one statement; elsewhere a session of `session_factory`."""
    if connection is not None and connection.dialect.name == "postgresql":
        values = {
            "now": utcnow(),
            "title": title_from(prepared.content),
            "conversation_id": prepared.conversation_id,
            "user_id": user_id,
            "content": prepared.content,
        }
        rows = sorted((await connection.execute(_STORE_STATEMENTS[is_stream], values)).mappings(), key=_by_id)
        if not rows:
            raise ConversationNotFound()
        stored = [Message(**row) for row in rows]
        return Stored(stored[0], stored[1] if is_stream else None)
    async with session_factory() as session:
        is_counted = await _count_messages(
            session, prepared.conversation_id, 2 if is_stream else 1, title=title_from(prepared.content), owner=user_id
        )
        if not is_counted:
            raise ConversationNotFound()
        user_message = Message(
            conversation_id=prepared.conversation_id, role="user", content=prepared.content, status="complete"
        )
        session.add(user_message)
        reply = None
        if is_stream:  # `partial` until the stream ends: a crash mid-stream leaves an honest row behind
            reply = Message(conversation_id=prepared.conversation_id, role="assistant", content="", status="partial")
            session.add(reply)
        await session.commit()
    return Stored(user_message, reply)


def _by_id(row: Any) -> int:
    return int(row["id"])


async def store_reply(
    session_factory: async_sessionmaker[AsyncSession], conversation_id: int, values: dict[str, Any]
) -> Message:
    """A non-streamed reply (or the record of a failed one), counted on its conversation."""
    async with session_factory() as session:
        reply = Message(conversation_id=conversation_id, role="assistant", **values)
        session.add(reply)
        await _count_messages(session, conversation_id, 1)
        await session.commit()
    return reply


def budget_read(llm: LLM, prepared: Prepared) -> None:
    if isinstance(llm, BudgetedLLM):  # prepare_turn read today's tokens with the conversation, moments ago
        llm.budget_checked(prepared.tokens_used)


async def cancel(task: asyncio.Task[Any]) -> None:
    """Stop `task` and wait for it; what it raised (it may have finished already) is of no interest."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


async def send(
    session_factory: async_sessionmaker[AsyncSession], llm: LLM, user_id: int, prepared: Prepared
) -> tuple[Message, Message]:
    """The student's message and the tutor's reply; 502/504 when the LLM fails (the message is kept)."""
    budget_read(llm, prepared)
    answer = asyncio.create_task(llm.complete(prepared.prompt))  # asked now; the message is stored meanwhile
    try:
        stored = await store_turn(session_factory, prepared, user_id, is_stream=False)
    except BaseException:
        await cancel(answer)
        raise
    try:
        completion = await answer
    except LLMError as error:
        log.warning("chat.llm_failed", provider=error.provider, reason=error.reason, stream=False)
        await store_reply(session_factory, prepared.conversation_id, reply_values("", None, "failed"))
        raise as_app_error(error) from error
    reply_row = reply_values(completion.text, completion.usage, "complete")
    return stored.user_message, await store_reply(session_factory, prepared.conversation_id, reply_row)


async def open_for_shortcut(
    session: AsyncSession, session_factory: async_sessionmaker[AsyncSession], settings: Settings, user: User
) -> int:
    """`POST /chat/message` without a conversation: a new one (named after the message by `store_turn`),
    committed at once; none is created when the budget is spent."""
    await check_budget(session, settings, user.id)
    async with session_factory() as writer:
        conversation_id = (await create_conversation(writer, user, title=None, exercise_id=None)).id
        await writer.commit()
    return conversation_id
