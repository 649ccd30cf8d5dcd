"""A reply relayed as the LLM writes it, and stored when it ends (through short sessions of its own:
the request's session is gone before the first byte of a streamed response is sent)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.errors import AppError
from backend.integrations.llm import LLM, LLMError, Usage
from backend.integrations.llm.tokens import count_prompt_tokens, count_tokens
from backend.models.chat import Message
from backend.services.chat.turns import REPLY_NOT_SAVED, Turn, apply_reply, as_app_error, budget_read

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
    budget_read(llm)  # `turn` comes from start_turn
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
