"""Conversations with the Socratic AI tutor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from functools import wraps
from typing import ParamSpec, TypeVar

import structlog
from pydantic import BaseModel
from quart import Blueprint, Response, current_app, g, request
from quart_schema import tag_blueprint, validate_querystring, validate_request, validate_response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.api.guards import current_user, require_user, settings, user_llm
from backend.api.openapi import no_content, problem_responses, streams_events
from backend.db import end_reads, get_session, read_connection, read_only
from backend.errors import is_connection_error
from backend.middleware.rate_limit import RATE_LIMITS, Also, enforce, rate_limit
from backend.schemas.chat import (
    ChatStreamEvent,
    ConversationCreate,
    ConversationList,
    ConversationRead,
    ConversationUpdate,
    MessageCreate,
    MessageList,
    MessagePair,
    MessageRead,
    MessagesQuery,
    ShortcutMessage,
    ShortcutReply,
    StreamDelta,
    StreamDone,
    StreamError,
    StreamStarted,
)
from backend.schemas.common import PageQuery
from backend.services import chat as chat_service
from backend.services.llm_gateway import BudgetedLLM
from backend.services.prompts import REPLY_MAX_TOKENS

log = structlog.get_logger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

bp = Blueprint("chat", __name__)
tag_blueprint(bp, ["chat"])

EVENT_STREAM = "text/event-stream"
# A stream is bounded by the LLM's own timeouts between chunks; this caps a pathological one overall.
STREAM_MAX_SECONDS = 600


def rate_limit_alongside(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """`@rate_limit(name)`, counted while the handler does its first read: the Redis round trip runs
    alongside the turn's query instead of before it. The handler awaits `limits_passed()` before it
    writes anything or asks the LLM; a 429 still wins over whatever else the handler raised meanwhile.

    The same round trip takes the LLM budget's hold of the reply (services/llm_gateway.py) for the turn's
    `chat_llm()`; the hold goes back when the handler ends if no call took it (a 404 or 429, say)."""
    limits = RATE_LIMITS[name]

    def decorator(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            llm = g.chat_llm = user_llm()
            enabled = current_app.config["RATE_LIMITS_ENABLED"]
            taken: asyncio.Future[int] | None = asyncio.get_running_loop().create_future() if enabled else None
            hold = llm.hold_ahead(REPLY_MAX_TOKENS, taken=taken)  # without limits, in a round trip of its own
            try:
                if not enabled:
                    return await func(*args, **kwargs)
                also = Also(hold.item, taken) if hold is not None and taken is not None else None
                check = g.rate_limit_check = asyncio.create_task(enforce(name, limits, also))
                try:
                    return await func(*args, **kwargs)
                finally:
                    g.pop("rate_limit_check", None)
                    await check  # counted whatever happened; over the limit is the answer, as when it ran first
            finally:
                await llm.drop_ahead()

        return wrapper

    return decorator


def chat_llm() -> BudgetedLLM:
    """The signed-in user's LLM for this turn (`rate_limit_alongside` took its reply's budget hold)."""
    llm: BudgetedLLM = g.chat_llm
    return llm


async def limits_passed() -> None:
    """Raise the 429 of `rate_limit_alongside` now (the handler is about to write or ask the LLM)."""
    check = g.get("rate_limit_check")
    if check is not None:
        await check


def wants_stream(data: MessageCreate) -> bool:
    return data.stream or request.accept_mimetypes.best == EVENT_STREAM


def sse(event: str, data: BaseModel) -> bytes:
    """One frame; `data` is the event's schema in the document (ChatStreamEvent), so the two cannot drift."""
    return f"event: {event}\ndata: {data.model_dump_json()}\n\n".encode()


def event_stream(events: AsyncGenerator[chat_service.StreamEvent, None]) -> Response:
    async def body() -> AsyncGenerator[bytes, None]:
        try:
            async with aclosing(encoded(events)) as frames:  # a client gone closes the service's stream at once
                async for frame in frames:
                    yield frame
        except Exception as error:  # the headers are long sent: an event is the last answer a client can get
            # A stream cannot become a problem response any more; without this the client sees a cut
            # connection and no `error` event (e.g. the reply's store failing on an exhausted pool).
            log.exception("chat.stream_failed", exc_info=error)
            code = "service_unavailable" if is_connection_error(error) else "internal_error"
            detail = "The reply could not be finished; try again."
            yield sse("error", StreamError.model_validate(chat_service.Failed(code, detail), from_attributes=True))

    response = Response(body(), status=200, content_type=f"{EVENT_STREAM}; charset=utf-8")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx and friends: pass each event on at once
    response.timeout = STREAM_MAX_SECONDS
    return response


async def encoded(events: AsyncGenerator[chat_service.StreamEvent, None]) -> AsyncGenerator[bytes, None]:
    """The service's events as SSE frames."""
    async with aclosing(events):
        async for event in events:
            match event:
                case chat_service.Started():
                    ids = StreamStarted(
                        user_message_id=event.user_message_id, assistant_message_id=event.assistant_message_id
                    )
                    yield sse("start", ids)
                case chat_service.Delta():
                    yield sse("delta", StreamDelta(content=event.content))
                case chat_service.Done():
                    yield sse("done", StreamDone(assistant_message=MessageRead.model_validate(event.assistant_message)))
                case chat_service.Failed():
                    yield sse("error", StreamError.model_validate(event, from_attributes=True))


@bp.post("/conversations")
@require_user
@rate_limit("conversation")
@validate_request(ConversationCreate)
@validate_response(ConversationRead, 201)
@problem_responses(404, 429)
async def create_conversation(data: ConversationCreate) -> tuple[ConversationRead, int]:
    """Start a conversation with the tutor.

    Without a title it is named after its first message. `exercise_id` makes it an exercise conversation;
    `submission_id` starts one about that submission ("why did this fail?"). 404 for an exercise or a
    submission that is not yours to see. 429 `rate_limited` beyond 20 a minute or 300 a day."""
    conversation = await chat_service.create_conversation(
        get_session(), current_user(), title=data.title, exercise_id=data.exercise_id, submission_id=data.submission_id
    )
    return ConversationRead.model_validate(conversation), 201


@bp.get("/conversations")
@require_user
@read_only
@validate_querystring(PageQuery)
@validate_response(ConversationList)
async def list_conversations(query_args: PageQuery) -> ConversationList:
    """Your conversations, most recent activity first."""
    async with read_connection() as connection:
        items, total = await chat_service.conversation_page(
            connection, current_user(), limit=query_args.limit, offset=query_args.offset
        )
    return ConversationList.of(items, total, query_args)


@bp.get("/conversations/<int:conversation_id>")
@require_user
@read_only
@validate_response(ConversationRead)
async def get_conversation(conversation_id: int) -> ConversationRead:
    """One of your conversations. 404 for anyone else's."""
    conversation = await chat_service.get_owned(get_session(), current_user(), conversation_id)
    return ConversationRead.model_validate(conversation)


@bp.patch("/conversations/<int:conversation_id>")
@require_user
@validate_request(ConversationUpdate)
@validate_response(ConversationRead)
async def rename_conversation(conversation_id: int, data: ConversationUpdate) -> ConversationRead:
    """Rename a conversation."""
    conversation = await chat_service.rename_conversation(get_session(), current_user(), conversation_id, data.title)
    return ConversationRead.model_validate(conversation)


@bp.delete("/conversations/<int:conversation_id>")
@require_user
@no_content
async def delete_conversation(conversation_id: int) -> tuple[str, int]:
    """Delete a conversation and its messages."""
    await chat_service.delete_conversation(get_session(), current_user(), conversation_id)
    return "", 204


@bp.get("/conversations/<int:conversation_id>/messages")
@require_user
@read_only
@validate_querystring(MessagesQuery)
@validate_response(MessageList)
async def list_messages(conversation_id: int, query_args: MessagesQuery) -> MessageList:
    """A page of messages: the newest `limit` older than `before_id`, listed oldest first."""
    async with read_connection() as connection:
        items, has_more = await chat_service.message_page(
            connection, current_user(), conversation_id, limit=query_args.limit, before_id=query_args.before_id
        )
    return MessageList(items=[MessageRead.model_validate(item) for item in items], has_more=has_more)


@bp.post("/conversations/<int:conversation_id>/messages")
@require_user
@read_only  # the turn reads without a transaction and writes in short ones of its own (see `prepare`)
@rate_limit_alongside("chat")
@validate_request(MessageCreate)
@validate_response(MessagePair, 201)
@problem_responses(429, 502, 504)
async def post_message(conversation_id: int, data: MessageCreate) -> tuple[MessagePair, int] | Response:
    """Send a message to the tutor and get the whole reply.

    201 with both messages. Your message is stored first: an LLM failure keeps it and answers 502
    `llm_error` / 504 `llm_timeout`. 429 `rate_limited` (10/minute, 200/day) or `quota_exceeded` (daily
    token budget). For the reply as it is written use `stream_message` (this route also streams when sent
    `stream: true` or `Accept: text/event-stream`, as it always has)."""
    if wants_stream(data):
        return await stream_reply(conversation_id, data)
    user = current_user()
    prepared = await prepare(conversation_id, data.content)
    user_message, reply = await chat_service.send(session_factory(), chat_llm(), user.id, prepared)
    return MessagePair(
        user_message=MessageRead.model_validate(user_message), assistant_message=MessageRead.model_validate(reply)
    ), 201


@bp.post("/conversations/<int:conversation_id>/messages/stream")
@require_user
@read_only
@rate_limit_alongside("chat")
@validate_request(MessageCreate)
@streams_events(ChatStreamEvent, "The reply as Server-Sent Events: `start`, `delta`s, then `done` or `error`.")
@problem_responses(429)
async def stream_message(conversation_id: int, data: MessageCreate) -> Response:
    """Send a message to the tutor and get the reply as it is written (Server-Sent Events).

    Events: `start` {user_message_id, assistant_message_id}, `delta` {content}, then `done`
    {assistant_message} or `error` {code, detail}. Your message is stored first; a failing LLM ends the
    stream with an `error` event and keeps what was written (`status: partial`). Limits as for `post_message`."""
    return await stream_reply(conversation_id, data)


def session_factory() -> async_sessionmaker[AsyncSession]:
    return current_app.extensions["db_session_factory"]


async def prepare(conversation_id: int, content: str) -> chat_service.Prepared:
    """The turn's one read (404, 429), then its connection back to the pool: none is held while the LLM
    thinks (the sending routes are `@read_only`; the turn writes in short sessions of its own)."""
    prepared = await read_turn(conversation_id, content)
    await end_reads()
    return prepared


async def read_turn(conversation_id: int, content: str) -> chat_service.Prepared:
    """`prepare_turn` while the rate limits are counted; their 429 comes before its 404 or quota 429."""
    try:
        async with read_connection() as connection:
            prepared = await chat_service.prepare_turn(connection, settings(), current_user(), conversation_id, content)
    finally:
        await limits_passed()
    return prepared


async def stream_reply(conversation_id: int, data: MessageCreate) -> Response:
    """The turn's read, then its write on the same connection (on PostgreSQL one statement, while the LLM
    request starts), which then goes back to the pool before the reply is relayed."""
    factory, llm, user = session_factory(), chat_llm(), current_user()
    try:
        prepared = await read_turn(conversation_id, data.content)
        async with read_connection() as connection:
            turn = await chat_service.start_stream(factory, llm, user.id, prepared, connection=connection)
    finally:
        await end_reads()
    return event_stream(chat_service.stream_turn(factory, llm, turn))


@bp.post("/message")
@require_user
@read_only
@rate_limit_alongside("chat")
@validate_request(ShortcutMessage)
@validate_response(ShortcutReply)
@problem_responses(404, 429, 502, 504)
async def post_chat_message(data: ShortcutMessage) -> ShortcutReply:
    """Ask the tutor in one call, in a given conversation or a new one.

    Shares the limits of sending a message; 502/504 when the LLM fails (your message is kept)."""
    user, factory = current_user(), session_factory()
    conversation_id = data.conversation_id
    if conversation_id is None:
        await limits_passed()  # before a conversation is created
        conversation_id = await chat_service.open_for_shortcut(get_session(), factory, settings(), user)
        await end_reads()  # the next read must see the new conversation (on SQLite a read keeps its snapshot)
    prepared = await prepare(conversation_id, data.message)
    _, reply = await chat_service.send(factory, chat_llm(), user.id, prepared)
    return ShortcutReply(
        conversation_id=conversation_id,
        message_id=reply.id,
        response=reply.content,
        model=reply.model,
        tokens_used=reply.tokens_used,
    )
