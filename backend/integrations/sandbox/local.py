"""The local executor: one bubblewrap sandbox (or, without bwrap, a bare limited process) per run.

Used by the sandbox runner process (`runner.py`), never by the API: the API talks to the runner
(`client.py`). Each run gets a fresh job dir holding its toolchain's harness and the job's files, a
concurrency slot and with it a uid of its own (from 60000 up, each claimed with an flock so that runners
never share one: RLIMIT_NPROC counts per uid machine-wide and is void for root). No `preexec_fn`: the
command is wrapped in `prlimit` (rlimits) and `setpriv` (the slot's uid, no groups), so starting a run is
a vfork + exec, never a fork of this process.

Under bubblewrap the process sees a read-only root with only /usr (read-only), its job dir (read-only, at
/job), a sized private tmpfs /tmp, fresh /proc, a read-only /dev holding null, zero, random and urandom
(no /dev/shm), no network, no /etc, no environment, no capabilities, and its own PID namespace, so
everything left in it dies with it. What one run can hold is bounded by SANDBOX_MEMORY_MB as a whole:
/tmp gets an eighth of it and each of at most MAX_PROCESSES processes an equal share of the rest as its
RLIMIT_AS (see `RunLimits`). The job goes in on stdin; the harness reports on a pipe passed as an extra
descriptor.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import tempfile
import time
import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path

import structlog

from backend.integrations.sandbox.base import (
    DEFAULT_QUEUE_TIMEOUT_SECONDS,
    HARNESS_SOURCE,
    RunResult,
    Sandbox,
    SandboxUnavailable,
    build_job,
    elapsed_ms,
    record,
    slot,
)
from backend.integrations.sandbox.confinement import (
    RunLimits,
    device_args,
    seccomp_program,
    switch_uid,
    system_links,
)
from backend.integrations.sandbox.languages.toolchains import TOOLCHAINS as LANGUAGE_TOOLCHAINS
from backend.integrations.sandbox.protocol import DEFAULT_TOOLCHAIN, Execution, Job, grade_execution

log = structlog.get_logger(__name__)

PYTHON = "/usr/bin/python3"  # the system interpreter: it lives under /usr, the only tree the sandbox sees
KILL = "/usr/bin/kill"
BASE_UID = 60000
UID_RANGE = 4096  # uids 60000-64095: enough slots for every runner on a host
UID_LOCK_DIR = Path(tempfile.gettempdir()) / "codementor-sandbox-uids"
MAX_REPORT_BYTES = 8 * 1024 * 1024
MAX_DIAGNOSTIC_BYTES = 16 * 1024
STOP_TIMEOUT_SECONDS = 5.0
DONE_LINE = b'\n{"event": "done"}\n'  # the harness's last line, exactly as it writes it
# Toolchain → the harness file the runner writes into the job dir and runs with the system Python.
TOOLCHAINS = {"python": ("harness.py", HARNESS_SOURCE)}

_warned_no_isolation = False


class LocalSandbox(Sandbox):
    backend = "local"

    def __init__(
        self,
        *,
        timeout_seconds: float,
        memory_mb: int,
        max_concurrency: int,
        queue_timeout_seconds: float = DEFAULT_QUEUE_TIMEOUT_SECONDS,
        use_isolation: bool | None = None,
        bwrap: str = "bwrap",
    ) -> None:
        """`use_isolation`: None = bubblewrap when installed; False = never (the fallback); True = required."""
        self.timeout_seconds = timeout_seconds
        self.limits = RunLimits(memory_mb * 1024 * 1024)
        self.bwrap = shutil.which(bwrap) if use_isolation is not False else None
        if use_isolation and self.bwrap is None:
            raise ValueError(f"sandbox isolation is required but bubblewrap ({bwrap}) is not installed")
        self.is_isolated = self.bwrap is not None
        # Only root can hand each slot its own uid; as anyone else the runs share ours (development).
        self.can_switch_uid = os.geteuid() == 0
        self.max_concurrency = max_concurrency
        self.queue_timeout_seconds = queue_timeout_seconds
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._uid_locks: dict[int, int] = {}  # uid → the descriptor holding its flock
        self._quarantined: list[int] = []  # uids whose leftovers the host's init has not reaped yet
        self._free_uids: list[int | None] | None = None  # claimed at the first run
        # Released even when close() is never called.
        weakref.finalize(self, release_locks, self._uid_locks)

    async def run(
        self, code: str, tests: list[dict], *, timeout_seconds: float | None = None, user: str | None = None
    ) -> RunResult:
        """Run and grade in this process (the runner's start-up probe and direct tests)."""
        job = python_job(code, tests, timeout_seconds or self.timeout_seconds, self.queue_timeout_seconds, user)
        async with slot(self._semaphore, self.queue_timeout_seconds):
            execution = await self.execute(job)
        return record(self.backend, grade_execution(tests, execution))

    async def execute(self, job: Job) -> Execution:
        """Run one job; the caller holds one of `max_concurrency` slots."""
        if job.toolchain not in TOOLCHAINS and job.toolchain not in LANGUAGE_TOOLCHAINS:
            raise SandboxUnavailable(f"unknown toolchain {job.toolchain!r}")
        if job.toolchain in LANGUAGE_TOOLCHAINS and not self.is_isolated:
            raise SandboxUnavailable(f"the {job.toolchain} toolchain runs only under bubblewrap")
        if self._free_uids is None:
            # One uid per slot, unique on the host: two runs sharing a uid would share RLIMIT_NPROC and
            # reach each other with kill(-1).
            self._free_uids = (
                self._claim_uids(self.max_concurrency) if self.can_switch_uid else [None] * self.max_concurrency
            )
        uid = self._free_uids.pop()
        execution = None
        try:
            execution = await self._execute_as(uid, job)
        finally:
            self._recycle(uid, execution is not None and execution.clean)
        return execution

    @property
    def claimed_uids(self) -> frozenset[int]:
        """Every uid this sandbox holds (free, busy or quarantined)."""
        return frozenset(self._uid_locks)

    async def close(self) -> None:
        release_locks(self._uid_locks)
        self._free_uids = None

    def _recycle(self, uid: int | None, is_clean: bool) -> None:
        """Give the slot back; a uid with processes left gets quarantined instead.

        Orphans of a killed fallback run go to the host's init, and until it reaps them they count
        against the uid's RLIMIT_NPROC (1.3 s here); the processes of a killed bwrap's PID namespace take
        a moment to die too. Rather than wait, the slot continues with a fresh uid."""
        if self._free_uids is None:  # closed meanwhile (shutdown)
            return
        if is_clean or uid is None or not has_processes(uid):
            self._free_uids.append(uid)
        else:
            try:
                self._free_uids.extend(self._claim_uids(1))
                self._quarantined.append(uid)
            except SandboxUnavailable:
                self._free_uids.append(uid)  # the range is exhausted: reuse it, leftovers and all
        for held in list(self._quarantined):
            if not has_processes(held):
                self._quarantined.remove(held)
                os.close(self._uid_locks.pop(held))

    def _claim_uids(self, count: int) -> list[int | None]:
        """Claim `count` free uids with an flock per uid, held for this sandbox's lifetime."""
        UID_LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        uids: list[int | None] = []
        in_use = uids_in_use()  # a uid someone runs processes as (without our flock) would share RLIMIT_NPROC
        for uid in range(BASE_UID, BASE_UID + UID_RANGE):
            if uid in self._uid_locks or uid in in_use:
                continue
            fd = os.open(UID_LOCK_DIR / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._uid_locks[uid] = fd
            uids.append(uid)
            if len(uids) == count:
                return uids
        raise SandboxUnavailable(f"no free sandbox uid in {BASE_UID}-{BASE_UID + UID_RANGE - 1}")

    async def _execute_as(self, uid: int | None, job: Job) -> Execution:
        # Synchronous on purpose: a few small files, well under a millisecond, and no await between making
        # the directory and the try/finally that removes it (a cancellation there would leak it).
        job_dir = prepare_job_dir(job, uid)
        read_fd, write_fd = os.pipe()
        filter_fd = seccomp_pipe() if self.is_isolated else None
        seconds = job.timeout_seconds
        try:
            started = time.perf_counter()
            try:
                process = await asyncio.create_subprocess_exec(
                    *self._command(job_dir, job.toolchain, write_fd, uid, seconds, filter_fd),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    pass_fds=(write_fd,) if filter_fd is None else (write_fd, filter_fd),
                    env={},
                    cwd=job_dir,
                    start_new_session=True,  # a process group of its own, killed as a whole
                )
            except OSError as error:
                raise SandboxUnavailable(f"cannot start the sandbox: {error}") from error
            finally:
                os.close(write_fd)
                if filter_fd is not None:
                    os.close(filter_fd)
            # From here the file object owns read_fd (then the transport does): never os.close() the number
            # again, or a cancelled connect would close it twice, the second time perhaps someone else's.
            pipe = os.fdopen(read_fd, "rb", 0)
            read_fd = -1
            transport: asyncio.ReadTransport | None = None
            report_bytes, diagnostics = bytearray(), bytearray()
            is_timeout, overflow = False, False
            try:
                reader = asyncio.StreamReader()
                transport, _ = await asyncio.get_running_loop().connect_read_pipe(
                    lambda: asyncio.StreamReaderProtocol(reader), pipe
                )
                stdin = job.stdin.encode("utf-8", "surrogatepass")
                async with asyncio.timeout(seconds):
                    overflow = await exchange(process, stdin, reader, report_bytes, diagnostics)
                    await process.wait()
            except TimeoutError:
                is_timeout = True
            finally:
                # Also when cancelled (the client went away) before or during the run: the process is
                # started, so it is always stopped below.
                if transport is not None:
                    transport.close()
                elif not pipe.closed:
                    pipe.close()
                # "done" comes only from the harness (nothing else can write to its channel), after it has
                # killed and reaped every other process of the run: then there is nothing left to kill.
                is_clean = not is_timeout and DONE_LINE in b"\n" + report_bytes
                await self._stop(process, uid, is_clean)
            duration = elapsed_ms(started, time.perf_counter())
        finally:
            if read_fd >= 0:
                os.close(read_fd)
            # rmtree's own closing of its directory descriptor is not covered by ignore_errors: the run is
            # over, so a leftover temp dir must not turn it into a server error.
            with contextlib.suppress(OSError):
                shutil.rmtree(job_dir, ignore_errors=True)
        return Execution(
            timed_out=is_timeout,
            overflow=overflow,
            clean=is_clean,
            returncode=process.returncode,
            report=bytes(report_bytes).decode("utf-8", "surrogateescape"),
            diagnostics=bytes(diagnostics).decode("utf-8", "replace"),
            duration_ms=duration,
        )

    async def _stop(self, process: asyncio.subprocess.Process, uid: int | None, is_clean: bool) -> None:
        """Kill what is left of a run. Killing bwrap's process group takes the PID namespace (and every
        detached grandchild in it) down — unless bwrap died before its child set PR_SET_PDEATHSIG (a
        timeout or cancellation during its set-up, seen under load): that namespace init survives with
        PPid 1, holding the run's pipes. Whatever left our session is reached through the slot's uid."""
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        if not is_clean and uid is not None and uid >= BASE_UID:
            # kill(-1) as the slot's uid reaches exactly the processes of this run, wherever they moved.
            # setpriv exits without exec'ing kill unless the uid really changed: as root, kill -1 would hit
            # every process on the host. No RLIMIT_NPROC here: a fork bomb at its limit would make the
            # exec fail with EAGAIN.
            killer = await asyncio.create_subprocess_exec(*switch_uid(uid), KILL, "-KILL", "-1", env={})
            await killer.wait()
        try:
            # wait() also waits for the pipes to close: bounded, so a survivor we could not reach (no uid
            # of its own, as an ordinary user) costs a log line, never a slot forever.
            async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                await process.wait()
        except TimeoutError:
            log.error("sandbox.unreaped", pid=process.pid, uid=uid)

    def _command(
        self, job_dir: Path, toolchain: str, results_fd: int, uid: int | None, seconds: float, filter_fd: int | None
    ) -> list[str]:
        if toolchain in LANGUAGE_TOOLCHAINS:
            return self._language_command(job_dir, toolchain, results_fd, uid, seconds, filter_fd)
        harness_file, _ = TOOLCHAINS[toolchain]
        harness_args = ["--results-fd", str(results_fd)]
        if uid is not None or self.is_isolated:
            # A uid of our own, or a PID namespace: kill(-1) from the harness reaches only this run.
            harness_args.append("--reap-all")
        wrappers = self.limits.prlimit(seconds) + (switch_uid(uid) if uid is not None else [])
        if not self.is_isolated:
            return [*wrappers, PYTHON, "-I", "-S", str(job_dir / harness_file), *harness_args]
        return [
            *wrappers,
            *self._confine(job_dir, filter_fd),
            PYTHON,
            "-I",
            "-S",
            f"/job/{harness_file}",
            *harness_args,
        ]

    def _language_command(
        self, job_dir: Path, name: str, results_fd: int, uid: int | None, seconds: float, filter_fd: int | None
    ) -> list[str]:
        """Another language's toolchain (languages/toolchains.py): the same confinement, with the toolchain's
        own command, read-only binds and address-space / thread limits (node and javac reserve far more
        address space than they use; their heaps are bounded by their own flags)."""
        toolchain = LANGUAGE_TOOLCHAINS[name]
        limits = [
            arg for arg in self.limits.prlimit(seconds) if not arg.startswith(("--as=", "--nproc="))
        ]  # fmt: skip
        limits[1:1] = [f"--as={toolchain.address_space_bytes}", f"--nproc={toolchain.max_processes}"]
        wrappers = limits + (switch_uid(uid) if uid is not None else [])
        binds = [arg for source, target in toolchain.ro_binds for arg in ("--ro-bind", source, target)]
        environment = ["--setenv", "PATH", "/usr/bin", "--setenv", "HOME", "/tmp"]  # noqa: S108 - its own tmpfs
        confinement = self._confine(job_dir, filter_fd, environment=environment, binds=binds)
        return [*wrappers, *confinement, *toolchain.command, "--results-fd", str(results_fd)]

    def _confine(
        self, job_dir: Path, filter_fd: int | None, *, environment: Sequence[str] = (), binds: Sequence[str] = ()
    ) -> list[str]:
        """bwrap and its arguments: the one confinement every toolchain runs under (docs/SECURITY.md)."""
        assert self.bwrap is not None
        return [
            self.bwrap,
            "--unshare-all",
            # The harness is the namespace's init: processes inside cannot signal it (not even SIGKILL),
            # orphans are reparented to it for reaping, and when it exits the kernel kills the rest.
            "--as-pid-1",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            *environment,
            "--cap-drop", "ALL",
            "--ro-bind", "/usr", "/usr",
            *system_links(),
            *binds,
            "--proc", "/proc",
            *device_args(),
            "--size", str(self.limits.tmpfs_bytes), "--tmpfs", "/tmp",  # noqa: S108 - the sandbox's own, sized
            "--ro-bind", str(job_dir), "/job",
            # Last: bwrap's root is an unbounded tmpfs; read-only, nothing but /tmp can hold data.
            "--remount-ro", "/",
            "--chdir", "/job",
            "--hostname", "sandbox",
            *(["--seccomp", str(filter_fd)] if filter_fd is not None else []),
        ]  # fmt: skip


def seccomp_pipe() -> int | None:
    """A pipe holding the seccomp filter, for bwrap to read (a fresh one per run: reading consumes it)."""
    program = seccomp_program()
    if program is None:
        return None
    read_fd, write_fd = os.pipe()
    os.write(write_fd, program)  # a few dozen bytes: far below the pipe's buffer
    os.close(write_fd)
    return read_fd


def python_job(code: str, tests: list[dict], timeout: float, queue_timeout: float, user: str | None) -> Job:
    """The Python harness's job: the code as main.py, the tests' inputs (never expectations) on stdin."""
    return Job(
        toolchain=DEFAULT_TOOLCHAIN,
        files={"main.py": code},
        stdin=build_job(code, tests),
        timeout_seconds=timeout,
        queue_timeout_seconds=queue_timeout,
        user=user or f"anonymous:{uuid.uuid4().hex}",  # no key: no queue of its own to wait in
    )


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


async def exchange(
    process: asyncio.subprocess.Process,
    job: bytes,
    reader: asyncio.StreamReader,
    report: bytearray,
    diagnostics: bytearray,
) -> bool:
    """Feed the job, collect the report (capped) and bwrap's diagnostics; True when the report overflowed."""
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    stdin = process.stdin

    async def feed() -> None:
        with contextlib.suppress(ConnectionError):  # the harness may be gone already (killed by its child)
            stdin.write(job)
            await stdin.drain()
            stdin.close()

    async def drain(stream: asyncio.StreamReader, into: bytearray, limit: int) -> bool:
        while chunk := await stream.read(65536):
            if len(into) + len(chunk) > limit:
                return True
            into += chunk
        return False

    results = await asyncio.gather(
        feed(),
        drain(reader, report, MAX_REPORT_BYTES),
        drain(process.stdout, diagnostics, MAX_DIAGNOSTIC_BYTES),
        drain(process.stderr, diagnostics, MAX_DIAGNOSTIC_BYTES),
    )
    return bool(results[1])


def prepare_job_dir(job: Job, uid: int | None) -> Path:
    """The job's files and its harness, readable by the run's own uid (group) and nobody else's."""
    job_dir = Path(tempfile.mkdtemp(prefix="codementor-sandbox-"))
    if job.toolchain in LANGUAGE_TOOLCHAINS:
        files = {**job.files, **LANGUAGE_TOOLCHAINS[job.toolchain].files}
    else:
        harness_file, harness_source = TOOLCHAINS[job.toolchain]
        files = {**job.files, harness_file: harness_source}
    for name, text in files.items():
        (job_dir / name).write_text(text, errors="surrogatepass")
        if uid is not None:
            os.chown(job_dir / name, 0, uid)
            (job_dir / name).chmod(0o640)
    if uid is not None:
        os.chown(job_dir, 0, uid)  # a concurrent run (another uid) cannot read this run's code
        job_dir.chmod(0o750)
    else:
        job_dir.chmod(0o755)  # development as an ordinary user: the run has our uid anyway
    return job_dir


def warn_no_isolation(can_switch_uid: bool) -> None:
    global _warned_no_isolation
    if not _warned_no_isolation:
        _warned_no_isolation = True
        detail = (
            "bubblewrap is not in use: submitted code runs with rlimits and its own uid, without namespaces "
            "(it can see the host's files that are world-readable and reach the network)"
            if can_switch_uid
            else "bubblewrap is not in use and this is not root: submitted code runs AS YOUR OWN USER and can "
            "read everything you can; install bubblewrap"
        )
        log.warning("sandbox.no_isolation", detail=detail)
