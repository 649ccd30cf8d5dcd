"""A reply relayed as the LLM writes it, and stored when it ends (through short sessions of its own:
the request's session is gone before the first byte of a streamed response is sent).

`start_stream` asks the LLM before the student's message is stored (see turns.py): the stream's first
step runs in a task (`Ahead`) while the message is written, and is read only after that commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from backend.errors import AppError
from backend.integrations.llm import LLM, LLMError, Prompt, StreamItem, Usage
from backend.integrations.llm.tokens import count_prompt_tokens, count_tokens
from backend.models.chat import Message
from backend.services.chat.turns import (
    REPLY_NOT_SAVED,
    Prepared,
    as_app_error,
    budget_read,
    cancel,
    reply_values,
    store_turn,
)

log = structlog.get_logger(__name__)


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


class Ahead:
    """An LLM stream whose first step already runs in a task: the request is on its way while the caller
    does other work. Iterate it like the stream; `aclose()` stops it, whether it was read or not."""

    def __init__(self, items: AsyncGenerator[StreamItem, None]) -> None:
        self._items = items
        self._first: asyncio.Task[tuple[bool, Any]] | None = asyncio.create_task(self._step())
        self._first.add_done_callback(_retrieved)  # a failure nobody reads (e.g. the client left) is not logged

    async def _step(self) -> tuple[bool, Any]:
        try:
            return True, await anext(self._items)
        except StopAsyncIteration:
            return False, None

    def __aiter__(self) -> Ahead:
        return self

    async def __anext__(self) -> StreamItem:
        if self._first is None:
            return await anext(self._items)
        first, self._first = self._first, None
        has_item, item = await first
        if not has_item:
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        if self._first is not None:
            first, self._first = self._first, None
            await cancel(first)
        await self._items.aclose()


def _retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


@dataclass(frozen=True)
class Turn:
    """A student's stored message, the reply's row, and the LLM's answer on its way."""

    conversation_id: int
    user_message: Message
    reply: Message
    prompt: Prompt
    answer: Ahead


async def start_stream(
    session_factory: async_sessionmaker[AsyncSession],
    llm: LLM,
    user_id: int,
    prepared: Prepared,
    *,
    connection: AsyncConnection | None = None,
) -> Turn:
    """Ask the LLM, and store the message and the reply's row while it starts (`prepared`, `connection`:
    turns.py)."""
    budget_read(llm, prepared)
    answer = Ahead(llm.stream(prepared.prompt))
    try:
        await asyncio.sleep(0)  # the LLM request is built and on its way before the store's work starts
        stored = await store_turn(session_factory, prepared, user_id, is_stream=True, connection=connection)
    except BaseException:
        await answer.aclose()
        raise
    assert stored.reply is not None
    return Turn(prepared.conversation_id, stored.user_message, stored.reply, prepared.prompt, answer)


async def _finish_stream(
    session_factory: async_sessionmaker[AsyncSession], turn: Turn, text: str, usage: Usage | None, status: str
) -> Message:
    async with session_factory() as session:
        reply = await session.scalar(
            update(Message)
            .where(Message.id == turn.reply.id)
            .values(**reply_values(text, usage, status))
            .returning(Message)
        )
        await session.commit()
    assert reply is not None  # the row was committed with the student's message
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
    started = time.perf_counter()
    parts: list[str] = []
    usage: Usage | None = None
    try:
        async with aclosing(turn.answer) as items:  # closed (the LLM stopped) however this ends
            yield Started(turn.user_message.id, turn.reply.id)
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
