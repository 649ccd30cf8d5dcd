"""Database: the declarative base, the engine for SQLite or PostgreSQL, and the per-request session.

The request owns the transaction: handlers and services use `get_session()` and only flush; the app
commits when the response status is below 400 and rolls back otherwise (see `register_session_hooks`).
Two marks override the status: `keep_changes()` commits behind an error, `discard_changes()` rolls back
behind a success (a redirect that reports a failure).

A handler marked `@read_only` gets a session without a transaction (PostgreSQL AUTOCOMMIT: no `BEGIN`
and `COMMIT`, two round trips fewer; SQLite: a deferred `BEGIN` that never waits for a writer). Under
PostgreSQL's default READ COMMITTED every statement sees its own snapshot anyway, so a read-only
handler sees nothing it would not have seen inside a transaction. Writing through such a session fails
loudly (`ReadOnlySession`); a handler that must write after all asks for `writable_session()`.

The hottest reads skip the ORM session altogether: `read_connection()` lends a pooled connection in the
same mode, and `fetch()` runs a `ReadStatement` (a Core select built once) on it; on PostgreSQL straight
through asyncpg, which costs a quarter of SQLAlchemy's execution of the same statement (docs/PERFORMANCE.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import structlog
from quart import Quart, Response, current_app, g, has_app_context
from sqlalchemy import DateTime, Dialect, MetaData, Select, event, func
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, ORMExecuteState, Session, UOWTransaction, mapped_column
from sqlalchemy.types import TypeDecorator

from backend.config import Settings
from backend.errors import render_exception

log = structlog.get_logger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLITE_BUSY_TIMEOUT_MS = 5000
# Execution option for connections that only read (readiness probes): on SQLite their transaction is a
# plain (deferred) BEGIN, which never waits for a writer's lock; elsewhere it changes nothing.
READ_ONLY = "codementor_read_only"

P = ParamSpec("P")
R = TypeVar("R")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores naive text and forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use datetime.now(UTC)")
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class TimestampedMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(settings.database_url)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size // 2,
        pool_timeout=10,
        # No pre-ping: it costs a round trip per request. A connection that died with the server is
        # invalidated on its first error (a 503), and the pool reconnects on the next checkout.
        pool_recycle=1800,
        connect_args={
            "timeout": 5,
            "server_settings": {
                "statement_timeout": str(int(settings.database_statement_timeout_seconds * 1000)),
                "application_name": "codementor",
            },
        },
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling starts deferred transactions that silently lose
    # read-then-write updates under concurrency; take control of BEGIN and make every transaction
    # take the write lock up front (BEGIN IMMEDIATE). WAL keeps readers of other connections unblocked.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        is_read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if is_read_only else "BEGIN IMMEDIATE")


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def read_engine(app: Quart | None = None) -> AsyncEngine:
    """The app's engine for work that only reads: no transaction on PostgreSQL (AUTOCOMMIT: a read needs
    no BEGIN/COMMIT round trips), a deferred BEGIN on SQLite (it never waits for a writer's lock)."""
    app = app or current_app
    engine = app.extensions.get("db_read_engine")
    if engine is None:
        engine = app.extensions["db_engine"]
        if engine.dialect.name == "postgresql":
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        else:
            engine = engine.execution_options(**{READ_ONLY: True})
        app.extensions["db_read_engine"] = engine
    return engine


# What a connection that only reads is switched to, per dialect (see `read_engine`).
_READ_OPTIONS: dict[str, dict[str, Any]] = {"postgresql": {"isolation_level": "AUTOCOMMIT"}}


@asynccontextmanager
async def read_connection(app: Quart | None = None, *, fetch_only: bool = False) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for reads outside any transaction, as `read_engine` gives, for prebuilt Core
    statements; after `share_read_connection()`, the request's one. Switched per connection rather than
    through an engine with execution options: such an engine joins its event dispatch to the pool's on
    every checkout, ~20% of a one-row read's CPU.

    `fetch_only`: the caller only runs `fetch()`, which on asyncpg goes to the driver outside SQLAlchemy's
    transaction handling, so the AUTOCOMMIT switch (~7% of `GET /auth/me`) is skipped; `fetch`'s fallback
    through SQLAlchemy then reads in a transaction that the pool's reset rolls back."""
    shared = g.get("read_connection") if app is None and has_app_context() else None
    if shared is not None:
        yield shared
        return
    engine: AsyncEngine = (app or current_app).extensions["db_engine"]
    async with engine.connect() as connection:
        if not (fetch_only and engine.dialect.driver == "asyncpg"):
            await connection.execution_options(**_READ_OPTIONS.get(engine.dialect.name, {READ_ONLY: True}))
        yield connection


async def share_read_connection() -> None:
    """For the rest of this request, every `read_connection()` and the `@read_only` session use one pooled
    connection (the session hooks close it): a read-only request checks out one connection for its
    authentication and its reads instead of one for each."""
    if g.get("read_connection") is None:
        engine: AsyncEngine = current_app.extensions["db_engine"]
        connection = await engine.connect()
        try:
            await connection.execution_options(**_READ_OPTIONS.get(engine.dialect.name, {READ_ONLY: True}))
        except BaseException:
            await connection.close()
            raise
        g.read_connection = connection


class ReadStatement:
    """A read (a Core select built once, with named bind parameters) that `fetch()` runs.

    On asyncpg it is compiled once to the driver's SQL and run as `connection.fetch(sql, *args)`: what
    SQLAlchemy adds around that (cache lookup, parameter and result processing, its cursor) costs three
    times the driver's own work for a one-row read. The statement must need no per-call processing:
    values go to the driver as they are (ints, strings, dates, aware datetimes), rows come back as
    asyncpg decodes them (JSON decoded by the codec SQLAlchemy installs), and `IN` takes no list."""

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._driver: tuple[str, tuple[str, ...], dict[str, Any]] | None = None

    def for_driver(self, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        """The SQL, the order of its parameters and the values fixed in the statement (`literal()`, LIMIT)."""
        if self._driver is None:
            compiled = self.statement.compile(dialect=dialect)
            assert compiled.positiontup is not None and not compiled.literal_execute_params
            fixed = {name: value for name, value in compiled.params.items() if value is not None}
            self._driver = str(compiled), tuple(compiled.positiontup), fixed
        return self._driver


async def fetch(
    connection: AsyncConnection, statement: ReadStatement, values: Mapping[str, Any]
) -> Sequence[Mapping[Any, Any]]:
    """The rows of `statement` (mappings by column name) for `values`, its bind parameters by name."""
    if connection.dialect.driver == "asyncpg":
        sql, order, fixed = statement.for_driver(connection.dialect)
        try:
            driver: Any = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
            rows: Sequence[Mapping[Any, Any]] = await driver.fetch(sql, *[values.get(n, fixed.get(n)) for n in order])
            return rows
        except Exception as error:
            # The same read through SQLAlchemy: a lost connection is then invalidated and the error translated
            # (an outage answers 503), exactly as for every other statement; a passing blip is just read again.
            log.warning("db.driver_read_failed", error=type(error).__name__)
    return list((await connection.execute(statement.statement, values)).mappings())


class ReadOnlySession(RuntimeError):
    """A `@read_only` handler tried to write: a bug (its writes would not be one transaction)."""


def read_only(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Mark a handler that only reads: its session runs without a transaction (see the module's doc)."""

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        g.read_only = True
        return await func(*args, **kwargs)

    setattr(wrapper, _READ_ONLY_MARK, True)  # `wraps` carries it to the decorators above (require_user)
    return wrapper


_READ_ONLY_MARK = "_codementor_read_only"


def is_read_only(func: Callable[..., Any]) -> bool:
    """Whether `func` is (or wraps, with functools.wraps) a `@read_only` handler."""
    return bool(getattr(func, _READ_ONLY_MARK, False))


def get_session() -> AsyncSession:
    """The request's session, opened on first use (routes that need no database never connect)."""
    session = g.get("db_session")
    if session is None:
        factory = current_app.extensions["db_session_factory"]
        if g.get("read_only"):
            bind = g.get("read_connection") or read_engine()
            session = factory(bind=bind, sync_session_class=_ReadOnlySyncSession)
        else:
            session = factory()
        g.db_session = session
        # Objects loaded before the session existed (the signed-in user, read without an ORM session)
        # join it now, so a handler's changes to them are flushed with the request.
        for obj in g.pop("attach_to_session", ()):
            session.add(obj)
    return session


async def writable_session() -> AsyncSession:
    """A session with a transaction for a `@read_only` handler that has to write after all (e.g. the
    first `GET /exercises/daily` of a day assigns an exercise). Its read-only session is closed: what it
    loaded stays readable, and the signed-in user joins the new session on the next `current_user()`."""
    if g.pop("read_only", False):
        session: AsyncSession | None = g.pop("db_session", None)
        if session is not None:
            await session.close()
            g.pop("user_in_session", None)  # guards.current_user() attaches the user to the new session
    return get_session()


async def end_reads() -> None:
    """A `@read_only` handler has read what it needs and now waits on something slow (the chat's LLM): its
    session and the connection it shares with authentication go back to the pool now, not with the
    response. A later `get_session()` opens a new read-only session (on SQLite, a fresh snapshot)."""
    session: AsyncSession | None = g.pop("db_session", None)
    if session is not None:
        await session.close()
        g.pop("user_in_session", None)  # guards.current_user() attaches the user to the next session
    await _close_read_connection(_request_state())


class _ReadOnlySyncSession(Session):
    """The ORM session of a `@read_only` request: its listeners below watch it alone, so the sessions of
    other requests pay nothing for the check."""


@event.listens_for(_ReadOnlySyncSession, "before_flush")
def _refuse_flush_when_read_only(session: Session, _: UOWTransaction, __: object) -> None:
    if session.new or session.deleted or any(session.is_modified(obj) for obj in session.dirty):
        raise ReadOnlySession("a @read_only request changed objects; use writable_session()")


@event.listens_for(_ReadOnlySyncSession, "do_orm_execute")
def _refuse_statements_when_read_only(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlySession("a @read_only request executed a write; use writable_session()")


def after_commit(callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` in the background once the request's transaction has committed (emails, jobs).

    Nothing slow runs inside the transaction, and nothing is announced that was then rolled back."""
    g.setdefault("after_commit", []).append(callback)


def keep_changes() -> None:
    """Commit this request's work even though it answers with an error (e.g. revoking a session on
    refresh-token reuse must stick while the client gets its 401)."""
    g.keep_changes = True


def discard_changes() -> None:
    """Roll back this request's work even though it answers below 400: a browser flow that fails still
    ends in a redirect (e.g. to the login page), and what the failed attempt wrote must not stick."""
    g.discard_changes = True


async def _await(callback: Callable[[], Awaitable[None]]) -> None:
    await callback()


# What a request may leave in `g` for the hooks below to finish.
_REQUEST_STATE = frozenset({"db_session", "after_commit", "keep_changes", "discard_changes", "read_connection"})


def _request_state() -> dict[str, Any]:
    """`g`'s attributes as a dict: one lookup through the context-local proxy, not one per attribute
    (these hooks run on every request, /health included)."""
    state: dict[str, Any] = g._get_current_object().__dict__
    return state


def register_session_hooks(app: Quart) -> None:
    @app.after_request
    async def _finish_transaction(response: Response) -> Response:
        state = _request_state()
        if state.keys().isdisjoint(_REQUEST_STATE):
            return response  # no database work to finish
        session: AsyncSession | None = state.pop("db_session", None)
        callbacks: list[Callable[[], Awaitable[None]]] = state.pop("after_commit", [])
        is_kept, is_discarded = state.pop("keep_changes", False), state.pop("discard_changes", False)
        should_commit = not is_discarded and (response.status_code < 400 or is_kept)
        if session is not None:
            try:
                if should_commit:
                    await session.commit()
                else:
                    await session.rollback()
            except Exception as error:  # the handler succeeded but its work was not saved: say so
                response = render_exception(error)
                should_commit = False
            finally:
                await session.close()
        await _close_read_connection(state)
        if should_commit:
            for callback in callbacks:
                app.add_background_task(_await, callback)
        return response

    @app.teardown_request
    async def _close_abandoned_session(_: BaseException | None) -> None:
        # An exception that escaped every handler skips after_request; never leak the connection.
        state = _request_state()
        if state.keys().isdisjoint(_REQUEST_STATE):
            return
        for name in ("after_commit", "keep_changes", "discard_changes"):
            state.pop(name, None)
        session: AsyncSession | None = state.pop("db_session", None)
        if session is not None:
            await session.close()
        await _close_read_connection(state)


async def _close_read_connection(state: dict[str, Any]) -> None:
    connection: AsyncConnection | None = state.pop("read_connection", None)
    if connection is not None:
        await connection.close()
