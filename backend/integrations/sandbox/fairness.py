"""Fair queueing of sandbox runs: one running job per user, free slots handed out round-robin across users.

The runner sees every API worker's requests, so this is where a flood from one account meets everyone
else's submissions. Each user key has its own FIFO; a slot that frees up goes to the next user in the
rotation who has a job waiting and none running, and that user moves to the back of the rotation. A job
that waits longer than its queue timeout gives up with `QueueTimeout` (the API answers 503).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator


class QueueTimeout(Exception):
    """No slot became free for this job within its queue timeout."""


class FairQueue:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.running: set[str] = set()
        # Users with waiting jobs, in rotation order; each with its jobs in arrival order.
        self.waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @property
    def queued(self) -> int:
        return sum(len(futures) for futures in self.waiting.values())

    @contextlib.asynccontextmanager
    async def slot(self, user: str, queue_timeout_seconds: float) -> AsyncIterator[None]:
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(user, deque()).append(granted)
        self._dispatch()
        try:
            async with asyncio.timeout(queue_timeout_seconds):
                await asyncio.shield(granted)
        except TimeoutError:
            if not granted.done():
                self._withdraw(user, granted)
                raise QueueTimeout(f"no sandbox slot became free within {queue_timeout_seconds:g} s") from None
            # Granted in the same instant the wait ran out: use the slot.
        except asyncio.CancelledError:
            if granted.done():
                self._release(user)
            else:
                self._withdraw(user, granted)
            raise
        try:
            yield
        finally:
            self._release(user)

    def _dispatch(self) -> None:
        while len(self.running) < self.slots:
            user = next((name for name in self.waiting if name not in self.running), None)
            if user is None:
                return
            futures = self.waiting.pop(user)
            granted = futures.popleft()
            if futures:
                self.waiting[user] = futures  # back of the rotation
            self.running.add(user)
            granted.set_result(None)

    def _withdraw(self, user: str, granted: asyncio.Future[None]) -> None:
        futures = self.waiting.get(user)
        if futures is not None and granted in futures:
            futures.remove(granted)
            if not futures:
                del self.waiting[user]

    def _release(self, user: str) -> None:
        self.running.discard(user)
        self._dispatch()
