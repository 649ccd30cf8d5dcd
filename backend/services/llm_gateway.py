"""The one way to the LLM on a user's behalf: every call checks and records the user's daily token budget.

`BudgetedLLM` wraps the app's LLM for one user. Before each call it refuses (`BudgetExceeded`) once the
user's tokens for today reach LLM_DAILY_TOKEN_BUDGET; after each call (a stream: when it ends, however
it ends) it adds what the call cost to the user's row for today. Chat, hints, grading feedback,
exercise generation and code reviews all hold one of these, never the bare provider, so no feature can
spend tokens the budget does not see.

Checks and records use short sessions of their own and commit at once: callers never hold a
transaction across an LLM call, and the cost must stick even when the request then fails (a generated
exercise rejected by the sandbox still cost its tokens). A caller that has a short transaction of its own
right before or after the call may fold them into it instead (`read_budget`, `hold_usage`: a graded
submission reads the budget with its stored row and writes the cost with its grade; if that write fails,
the cost is written on its own as before).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.cache import Cache, MemoryCache
from backend.config import Settings
from backend.db import utcnow
from backend.errors import RateLimited
from backend.integrations.llm import LLM, Completion, LLMError, Prompt, StreamItem, Usage
from backend.integrations.llm.tokens import count_prompt_tokens, count_tokens
from backend.metrics import LLM_TOKENS
from backend.models.chat import LLMUsage

log = structlog.get_logger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]


class QuotaExceeded(RateLimited):
    code = "quota_exceeded"
    detail = "You have used today's AI tutor budget; it renews at midnight UTC."


class BudgetExceeded(LLMError):
    """The user's tokens for today are spent: no provider is asked. Features that can do without the
    LLM (hints, grading feedback) treat it like any other LLM failure; the others answer 429."""

    retryable = False  # the fallback provider must not be asked either

    def __init__(self, provider: str) -> None:
        super().__init__("quota_exceeded", provider=provider)

    def as_app_error(self) -> QuotaExceeded:
        return QuotaExceeded(headers={"Retry-After": str(seconds_to_midnight())})


def today() -> date:
    return datetime.now(UTC).date()


def seconds_to_midnight() -> int:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return max(1, int((midnight - now).total_seconds()))


async def tokens_used_today(session: AsyncSession, user_id: int) -> int:
    used = await session.scalar(
        select(LLMUsage.prompt_tokens + LLMUsage.completion_tokens).where(
            LLMUsage.user_id == user_id, LLMUsage.day == today()
        )
    )
    return used or 0


async def check_budget(session: AsyncSession, settings: Settings, user_id: int) -> None:
    """429 `quota_exceeded` once today's tokens reach LLM_DAILY_TOKEN_BUDGET (0 means no budget).

    The call that crosses the budget is still answered: its size is only known afterwards."""
    budget = settings.llm_daily_token_budget
    if budget and await tokens_used_today(session, user_id) >= budget:
        raise QuotaExceeded(headers={"Retry-After": str(seconds_to_midnight())})


async def record_usage(session: AsyncSession, user_id: int, usage: Usage) -> None:
    """Add to the user's row for today, atomically (concurrent calls must not lose tokens)."""
    LLM_TOKENS.labels(usage.provider, usage.model, "prompt").inc(usage.prompt_tokens)
    LLM_TOKENS.labels(usage.provider, usage.model, "completion").inc(usage.completion_tokens)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(LLMUsage).values(
        user_id=user_id,
        day=today(),
        requests=1,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        updated_at=utcnow(),
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[LLMUsage.user_id, LLMUsage.day],
            set_={
                "requests": LLMUsage.requests + 1,
                "prompt_tokens": LLMUsage.prompt_tokens + statement.excluded.prompt_tokens,
                "completion_tokens": LLMUsage.completion_tokens + statement.excluded.completion_tokens,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )


def estimated_usage(llm: LLM, prompt: Prompt, text: str, started: float) -> Usage:
    """What a stream cut short cost: the provider never sent its count, so estimate it."""
    return Usage(
        llm.provider,
        llm.model,
        count_prompt_tokens(prompt.system, prompt.messages),
        count_tokens(text),
        round((time.perf_counter() - started) * 1000),
    )


# Today's tokens are written when a call ends, so parallel calls would all read the same total and all
# pass: ten chat messages sent at once by someone at the edge of the budget were all answered. Each call
# therefore holds the completion tokens it may still spend (its `max_tokens`) in a counter per user and
# day in the app's cache, shared by every worker and job process on Redis; a call is refused while the
# calls in flight could already reach the budget (the first is always asked: the call that crosses the
# budget is answered, as before). A crashed worker's hold expires with the counter, this many LLM
# timeouts after it was created; while Redis is away each process holds its own (cache.py).
HOLD_TTL_TIMEOUTS = 4
_local_caches: dict[int, Cache] = {}  # per app (its session factory), for a gateway given no cache
_giving_back: set[asyncio.Task[None]] = set()  # holds given back after their caller was cancelled


@dataclass(frozen=True)
class Hold:
    key: str
    tokens: int
    ttl: float

    @property
    def item(self) -> tuple[str, int, float]:
        return self.key, self.tokens, self.ttl


class BudgetedLLM(LLM):
    """`llm` on behalf of one user (see the module docstring). Closing it leaves `llm` open: the app owns it."""

    def __init__(
        self, llm: LLM, session_factory: SessionFactory, settings: Settings, user_id: int, cache: Cache | None = None
    ) -> None:
        self.llm, self.session_factory, self.settings, self.user_id = llm, session_factory, settings, user_id
        self.cache = cache if cache is not None else _local_caches.setdefault(id(session_factory), MemoryCache())
        self.provider, self.model = llm.provider, llm.model
        self._checked = False
        self._spent = False
        self._used = 0
        self._held: list[Usage] | None = None
        self._ahead: tuple[Hold, asyncio.Future[int]] | None = None

    def budget_checked(self, used: int = 0) -> None:
        """The caller has just read today's tokens itself (`used`: the chat, with its message's write) and
        found budget left: the next call skips its own read (three round trips before the first token)."""
        self._checked, self._used = True, used

    async def read_budget(self, session: AsyncSession) -> None:
        """Read today's tokens in the caller's transaction, one statement instead of a session of its own
        (a submission, with its write): the next call skips its own read, and is refused if it was spent."""
        budget = self.settings.llm_daily_token_budget
        if budget:
            self._used = await tokens_used_today(session, self.user_id)
            self._spent = self._used >= budget
            self._checked = True

    def hold_ahead(self, max_tokens: int, *, taken: asyncio.Future[int] | None = None) -> Hold | None:
        """Start taking the hold of the next call (of `max_tokens`) now, in a task: its cache round trip runs
        alongside the caller's own read (the chat's turn) instead of before the LLM request. With `taken`,
        the caller adds the returned hold to the cache itself, in a round trip it makes anyway (the rate
        limits'), and sets `taken` to the new total (cancels it if it did not). The caller ends with
        `drop_ahead`, which gives the hold back if no call took it."""
        if not self.settings.llm_daily_token_budget or self._ahead is not None:
            return None
        hold = self._hold(max_tokens)
        self._ahead = hold, taken if taken is not None else asyncio.create_task(self.cache.add(*hold.item))
        return hold

    async def drop_ahead(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            await asyncio.shield(self._give_back(*ahead))

    def _hold(self, max_tokens: int) -> Hold:
        return Hold(
            f"llm:held:{self.user_id}:{today().isoformat()}",
            max(1, max_tokens),
            HOLD_TTL_TIMEOUTS * self.settings.llm_timeout_seconds,
        )

    async def _take(self, max_tokens: int) -> tuple[Hold, int]:
        """This call's hold and the calls' total with it; if the caller is cancelled meanwhile, the hold is
        given back once it is taken (it may be already)."""
        ahead = self._ahead
        if ahead is not None and ahead[0].tokens == max(1, max_tokens):
            self._ahead = None
            hold, adding = ahead
        else:
            hold = self._hold(max_tokens)
            adding = asyncio.create_task(self.cache.add(*hold.item))
        try:
            return hold, await asyncio.shield(adding)
        except asyncio.CancelledError:
            giving_back = asyncio.create_task(self._give_back(hold, adding))
            _giving_back.add(giving_back)
            giving_back.add_done_callback(_giving_back.discard)
            raise

    async def _give_back(self, hold: Hold, adding: asyncio.Future[int]) -> None:
        try:
            await adding
        except (Exception, asyncio.CancelledError):  # nothing was taken
            return
        await self.cache.add(hold.key, -hold.tokens, hold.ttl)

    async def check(self, prompt: Prompt) -> Hold | None:
        """Raise `BudgetExceeded` when today's budget is spent, or would be by the calls in flight; else
        hold this call's place among them: what `_release` gives back when it ends."""
        budget = self.settings.llm_daily_token_budget
        if not budget or self._checked:
            self._checked, spent, self._spent, used, self._used = False, self._spent, False, self._used, 0
            if budget and spent:
                log.info("llm.budget_exceeded", user_id=self.user_id, budget=budget)
                raise BudgetExceeded(self.provider)
            if not budget:
                return None
        else:
            async with self.session_factory() as session:
                used = await tokens_used_today(session, self.user_id)
                await session.commit()
            if used >= budget:
                log.info("llm.budget_exceeded", user_id=self.user_id, used=used, budget=budget)
                raise BudgetExceeded(self.provider)
        hold, total = await self._take(prompt.max_tokens)
        in_flight = total - hold.tokens
        if in_flight > 0 and used + in_flight >= budget:
            await self._release(hold)
            log.info("llm.budget_exceeded", user_id=self.user_id, used=used, in_flight=in_flight, budget=budget)
            raise BudgetExceeded(self.provider)
        return hold

    async def _release(self, hold: Hold | None) -> None:
        if hold is not None:
            # Shielded: a cancelled call (the client went away) still gives its place back.
            await asyncio.shield(self.cache.add(hold.key, -hold.tokens, hold.ttl))

    def hold_usage(self) -> None:
        """Keep what the next calls cost instead of writing it at once: the caller writes it with its own
        transaction (`write_held`, one statement instead of a session of its own: a submission's grade),
        or, when that transaction fails, `release_held` writes it as `record` would have."""
        self._held = []

    async def write_held(self, session: AsyncSession) -> None:
        held, self._held = self._held or [], None
        for usage in held:
            await record_usage(session, self.user_id, usage)

    async def release_held(self) -> None:
        held, self._held = self._held or [], None
        for usage in held:
            await self.record(usage)

    async def record(self, usage: Usage) -> None:
        if not usage.total_tokens:
            return
        if self._held is not None:
            self._held.append(usage)
            return
        try:
            async with self.session_factory() as session:
                await record_usage(session, self.user_id, usage)
                await session.commit()
        except (SQLAlchemyError, OSError, TimeoutError) as error:
            # The answer exists and the caller still needs it; losing one count beats losing the answer.
            log.error("llm.usage_not_recorded", error_type=type(error).__name__, error=str(error)[:200])

    async def complete(self, prompt: Prompt, *, json_mode: bool = False) -> Completion:
        held = await self.check(prompt)
        try:  # counted before its place among the calls in flight is given back
            completion = await self.llm.complete(prompt, json_mode=json_mode)
            await self.record(completion.usage)
        finally:
            await self._release(held)
        return completion

    async def stream(self, prompt: Prompt) -> AsyncGenerator[StreamItem, None]:
        held = await self.check(prompt)
        started = time.perf_counter()
        parts: list[str] = []
        usage: Usage | None = None
        try:
            async with aclosing(self.llm.stream(prompt)) as items:
                async for item in items:
                    if isinstance(item, Usage):
                        usage = item
                    else:
                        parts.append(item)
                    yield item
        finally:
            try:
                # However the stream ended (done, failed, or the client went away), what was generated was paid for.
                if usage is None and parts:
                    usage = estimated_usage(self.llm, prompt, "".join(parts), started)
                if usage is not None:
                    # Shielded: a cancelled request must still be counted.
                    await asyncio.shield(self.record(usage))
            finally:
                await self._release(held)
