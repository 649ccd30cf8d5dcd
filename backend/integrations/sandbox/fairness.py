"""Fair queueing of sandbox runs: one running job per user, free slots handed out round-robin across users.

The runner sees every API worker's requests, so this is where a flood from one account meets everyone
else's submissions. Each user key has its own FIFO; a slot that frees up goes to the user, among those
with a job waiting and none running, who was served least recently (a user never served yet first, then
by arrival): a round-robin in which a newcomer never waits behind another user's backlog. A job that
waits longer than its queue timeout gives up with `QueueTimeout` (the API answers 503).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class QueueTimeout(Exception):
    """No slot became free for this job within its queue timeout."""


class FairQueue:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.running: set[str] = set()
        # Users with waiting jobs, in order of arrival; each with its jobs in arrival order.
        self.waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self.served: dict[str, int] = {}  # user → when last given a slot (a counter), while waiting or running
        self._turn = 0

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
            eligible = [(self.served.get(user, -1), index, user) for index, user in enumerate(self.waiting)]
            eligible = [entry for entry in eligible if entry[2] not in self.running]
            if not eligible:
                return
            user = min(eligible)[2]
            futures = self.waiting[user]
            granted = futures.popleft()
            if not futures:
                del self.waiting[user]
            self._turn += 1
            self.served[user] = self._turn
            self.running.add(user)
            granted.set_result(None)

    def _withdraw(self, user: str, granted: asyncio.Future[None]) -> None:
        futures = self.waiting.get(user)
        if futures is not None and granted in futures:
            futures.remove(granted)
            if not futures:
                del self.waiting[user]
                if user not in self.running:
                    self.served.pop(user, None)

    def _release(self, user: str) -> None:
        self.running.discard(user)
        if user not in self.waiting:
            self.served.pop(user, None)  # gone quiet: forget it
        self._dispatch()
