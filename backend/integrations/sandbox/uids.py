"""The sandbox's uids: one per concurrent slot, unique on the host, each claimed with an flock.

RLIMIT_NPROC counts per uid machine-wide and is void for root, and two runs sharing a uid could reach each
other with kill(-1): so each slot runs as a uid of its own (from 60000 up), claimed with an flock so that
runners never share one, and a uid that still has processes after its run is quarantined until the host
reaps them (the slot continues with a fresh one).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import weakref
from pathlib import Path

from backend.integrations.sandbox.base import SandboxUnavailable

BASE_UID = 60000
UID_RANGE = 4096  # uids 60000-64095: enough slots for every runner on a host
UID_LOCK_DIR = Path(tempfile.gettempdir()) / "codementor-sandbox-uids"


class UidPool:
    """`size` uids (or, when we cannot switch uids, `size` slots of our own uid: None)."""

    def __init__(self, size: int, *, can_switch_uid: bool) -> None:
        self.size = size
        self.can_switch_uid = can_switch_uid
        self._locks: dict[int, int] = {}  # uid → the descriptor holding its flock
        self._quarantined: list[int] = []  # uids whose leftovers the host's init has not reaped yet
        self._free: list[int | None] | None = None  # claimed at the first run
        # Released even when close() is never called.
        weakref.finalize(self, release_locks, self._locks)

    def take(self) -> int | None:
        """A free slot's uid (the caller holds one of `size` slots, so there is one)."""
        if self._free is None:
            # One uid per slot, unique on the host: two runs sharing a uid would share RLIMIT_NPROC and
            # reach each other with kill(-1).
            self._free = self.claim(self.size) if self.can_switch_uid else [None] * self.size
        return self._free.pop()

    @property
    def claimed(self) -> frozenset[int]:
        """Every uid held (free, busy or quarantined)."""
        return frozenset(self._locks)

    def close(self) -> None:
        release_locks(self._locks)
        self._free = None

    def give_back(self, uid: int | None, is_clean: bool) -> None:
        """Give the slot back; a uid with processes left gets quarantined instead.

        Orphans of a killed fallback run go to the host's init, and until it reaps them they count
        against the uid's RLIMIT_NPROC (1.3 s here); the processes of a killed bwrap's PID namespace take
        a moment to die too. Rather than wait, the slot continues with a fresh uid."""
        if self._free is None:  # closed meanwhile (shutdown)
            return
        if is_clean or uid is None or not has_processes(uid):
            self._free.append(uid)
        else:
            try:
                self._free.extend(self.claim(1))
                self._quarantined.append(uid)
            except SandboxUnavailable:
                self._free.append(uid)  # the range is exhausted: reuse it, leftovers and all
        for held in list(self._quarantined):
            if not has_processes(held):
                self._quarantined.remove(held)
                os.close(self._locks.pop(held))

    def claim(self, count: int) -> list[int | None]:
        """Claim `count` free uids with an flock per uid, held for this sandbox's lifetime."""
        UID_LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        uids: list[int | None] = []
        in_use = uids_in_use()  # a uid someone runs processes as (without our flock) would share RLIMIT_NPROC
        for uid in range(BASE_UID, BASE_UID + UID_RANGE):
            if uid in self._locks or uid in in_use:
                continue
            fd = os.open(UID_LOCK_DIR / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._locks[uid] = fd
            uids.append(uid)
            if len(uids) == count:
                return uids
        raise SandboxUnavailable(f"no free sandbox uid in {BASE_UID}-{BASE_UID + UID_RANGE - 1}")


def release_locks(locks: dict[int, int]) -> None:
    for fd in locks.values():
        os.close(fd)  # closing the descriptor releases its flock
    locks.clear()


def uids_in_use() -> set[int]:
    uids = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                uids.add(entry.stat().st_uid)
    return uids


def has_processes(uid: int) -> bool:
    """Whether any process (zombies included) still runs as `uid`: a scan of /proc."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    return True
    return False
