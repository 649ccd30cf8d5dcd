"""The local backend: one bubblewrap sandbox (or, without bwrap, a bare limited process) per run.

Each run gets a fresh job dir holding `harness.py` and `main.py` (the submission), a concurrency slot and
with it a uid of its own (from 60000 up, each claimed with an flock so that worker processes never share
one: RLIMIT_NPROC counts per uid machine-wide and is void for root), and is started through `preexec_fn`
with setsid, rlimits and the uid switch. Under bubblewrap the process sees only a read-only /usr, its job
dir (read-only, at /job), a small private tmpfs /tmp, fresh /proc and /dev, no network, no /etc, no
environment, no capabilities, and its own PID namespace, so everything left in it dies with it. The job
(code and test inputs, never expected values) goes in on stdin; the harness reports on a pipe passed as
an extra descriptor; grading happens here (`base.grade`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import math
import os
import resource
import shutil
import signal
import tempfile
import time
import weakref
from pathlib import Path

import structlog

from backend.integrations.sandbox.base import (
    DEFAULT_QUEUE_TIMEOUT_SECONDS,
    HARNESS_SOURCE,
    Report,
    RunResult,
    Sandbox,
    SandboxUnavailable,
    build_job,
    elapsed_ms,
    grade,
    record,
    slot,
)

log = structlog.get_logger(__name__)

PYTHON = "/usr/bin/python3"  # the system interpreter: it lives under /usr, the only tree the sandbox sees
KILL = "/usr/bin/kill"
BASE_UID = 60000
UID_RANGE = 4096  # uids 60000-64095: enough slots for every worker process on a host
UID_LOCK_DIR = Path(tempfile.gettempdir()) / "codementor-sandbox-uids"
MAX_PROCESSES = 32  # per slot uid, counting the outer bwrap and the harness
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_OPEN_FILES = 64
TMPFS_BYTES = 32 * 1024 * 1024  # /tmp lives in RAM: bounded so a loop of file writes cannot fill it
MAX_REPORT_BYTES = 8 * 1024 * 1024
MAX_DIAGNOSTIC_BYTES = 16 * 1024
DONE_LINE = b'\n{"event": "done"}\n'  # the harness's last line, exactly as it writes it
SYSTEM_LINKS = ("/bin", "/lib", "/lib64", "/sbin")

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
    ) -> None:
        """`use_isolation`: None = bubblewrap when installed; False = never (the fallback); True = required."""
        self.timeout_seconds = timeout_seconds
        self.memory_bytes = memory_mb * 1024 * 1024
        self.bwrap = shutil.which("bwrap") if use_isolation is not False else None
        if use_isolation and self.bwrap is None:
            raise ValueError("sandbox isolation is required but bubblewrap (bwrap) is not installed")
        self.is_isolated = self.bwrap is not None
        # Only root can hand each slot its own uid; as anyone else the runs share ours (development).
        self.can_switch_uid = os.geteuid() == 0
        self.max_concurrency = max_concurrency
        self.queue_timeout_seconds = queue_timeout_seconds
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._uid_locks: dict[int, int] = {}  # uid → the descriptor holding its flock
        self._quarantined: list[int] = []  # uids whose leftovers the host's init has not reaped yet
        self._free_uids: list[int | None] | None = None  # claimed at the first run
        # Released even when close() is never called (test suites build many apps).
        weakref.finalize(self, release_locks, self._uid_locks)
        if not self.is_isolated:
            warn_no_isolation()

    async def run(self, code: str, tests: list[dict], *, timeout_seconds: float | None = None) -> RunResult:
        timeout = timeout_seconds or self.timeout_seconds
        job = build_stdin(code, tests)
        # A burst queues here instead of starting more interpreters than the host has cores for.
        async with slot(self._semaphore, self.queue_timeout_seconds):
            if self._free_uids is None:
                # One uid per slot, unique on the host: each worker process has its own sandbox, and two
                # runs sharing a uid would share RLIMIT_NPROC and reach each other with kill(-1).
                self._free_uids = (
                    self._claim_uids(self.max_concurrency) if self.can_switch_uid else [None] * self.max_concurrency
                )
            uid = self._free_uids.pop()
            is_clean = False
            try:
                result, is_clean = await self._run_as(uid, code, job, tests, timeout)
            finally:
                self._recycle(uid, is_clean)
        return record(self.backend, result)

    @property
    def claimed_uids(self) -> frozenset[int]:
        """Every uid this sandbox holds (free, busy or quarantined)."""
        return frozenset(self._uid_locks)

    async def close(self) -> None:
        release_locks(self._uid_locks)
        self._free_uids = None

    def _recycle(self, uid: int | None, is_clean: bool) -> None:
        """Give the slot back; without namespaces, a uid with processes left gets quarantined instead.

        Orphans of a killed fallback run go to the host's init, and until it reaps them they count
        against the uid's RLIMIT_NPROC (1.3 s here): rather than wait, the slot continues with a fresh uid."""
        if self._free_uids is None:  # closed meanwhile (shutdown)
            return
        if self.is_isolated or is_clean or uid is None or not has_processes(uid):
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
        for uid in range(BASE_UID, BASE_UID + UID_RANGE):
            if uid in self._uid_locks:
                continue
            fd = os.open(UID_LOCK_DIR / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
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

    async def _run_as(
        self, uid: int | None, code: str, job: bytes, tests: list[dict], seconds: float
    ) -> tuple[RunResult, bool]:
        """The graded result, and whether the run is known to have left no process behind."""
        # Synchronous on purpose: two small files, well under a millisecond, and no await between making
        # the directory and the try/finally that removes it (a cancellation there would leak it).
        job_dir = prepare_job_dir(code)
        read_fd, write_fd = os.pipe()
        try:
            started = time.perf_counter()
            try:
                process = await asyncio.create_subprocess_exec(
                    *self._command(job_dir, write_fd, uid),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    pass_fds=(write_fd,),
                    env={},
                    cwd=job_dir,
                    preexec_fn=ProcessLimits(uid, seconds, self.memory_bytes),
                )
            except OSError as error:
                raise SandboxUnavailable(f"cannot start the sandbox: {error}") from error
            finally:
                os.close(write_fd)
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
                async with asyncio.timeout(seconds):
                    overflow = await exchange(process, job, reader, report_bytes, diagnostics)
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
            # rmtree's own closing of its directory descriptor is not covered by ignore_errors, and under
            # load it has raised EBADF (3 in 544 runs; cause not found yet): the run is over and graded,
            # so a leftover temp dir must not turn it into a server error.
            with contextlib.suppress(OSError):
                shutil.rmtree(job_dir, ignore_errors=True)

        report = Report.parse(bytes(report_bytes).split(b"\n"))
        if not is_timeout and not report.is_started and report.syntax_error is None:
            # The harness never got to the user's code: the sandbox itself is broken (bwrap refused, no
            # python3 under /usr...). Not the submission's fault, so not a graded result.
            log.error(
                "sandbox.failed",
                returncode=process.returncode,
                detail=bytes(diagnostics[:2000]).decode("utf-8", "replace"),
            )
            raise SandboxUnavailable("the sandbox did not start")
        crash = None
        if overflow:
            crash = "output limit exceeded"
        elif not is_timeout and not report.is_done:
            crash = "the program stopped the grader"
            # Usually the submission's doing (it killed its harness); the log tells the rare other cases.
            log.warning(
                "sandbox.harness_stopped",
                returncode=process.returncode,
                detail=bytes(diagnostics[-2000:]).decode("utf-8", "replace"),
            )
        return grade(tests, report, duration_ms=duration, is_timeout=is_timeout, crash=crash), is_clean

    async def _stop(self, process: asyncio.subprocess.Process, uid: int | None, is_clean: bool) -> None:
        """Kill what is left of a run. Under bwrap, killing its process group takes the PID namespace (and
        every detached grandchild in it) down; without it, a process that left our session is reached
        only through its uid."""
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        if not self.is_isolated and not is_clean and uid is not None and uid >= BASE_UID:
            # kill(-1) as the slot's uid reaches exactly the processes of this run, wherever they moved.
            # SwitchUid raises (and nothing is exec'd) unless the uid really changed: as root, kill -1
            # would hit every process on the host. No RLIMIT_NPROC here: a fork bomb at its limit would
            # make this exec fail with EAGAIN.
            killer = await asyncio.create_subprocess_exec(KILL, "-KILL", "-1", env={}, preexec_fn=SwitchUid(uid))
            await killer.wait()

    def _command(self, job_dir: Path, results_fd: int, uid: int | None) -> list[str]:
        harness_args = ["--results-fd", str(results_fd)]
        if uid is not None or self.is_isolated:
            # A uid of our own, or a PID namespace: kill(-1) from the harness reaches only this run.
            harness_args.append("--reap-all")
        if not self.is_isolated:
            return [PYTHON, "-I", "-S", str(job_dir / "harness.py"), *harness_args]
        assert self.bwrap is not None
        return [
            self.bwrap,
            "--unshare-all",
            # The harness is the namespace's init: processes inside cannot signal it (not even SIGKILL),
            # orphans are reparented to it for reaping, and when it exits the kernel kills the rest. It
            # also spares a bwrap monitor process, which the host's init would have to reap (and which
            # counted against the slot uid's RLIMIT_NPROC until it did).
            "--as-pid-1",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--cap-drop", "ALL",
            "--ro-bind", "/usr", "/usr",
            *system_links(),
            "--proc", "/proc",
            "--dev", "/dev",
            "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp",  # noqa: S108 - a private tmpfs inside the sandbox
            "--ro-bind", str(job_dir), "/job",
            "--chdir", "/job",
            "--hostname", "sandbox",
            PYTHON, "-I", "-S", "/job/harness.py", *harness_args,
        ]  # fmt: skip


class ProcessLimits:
    """The `preexec_fn`: runs in the forked child before exec, so it may only make plain system calls."""

    def __init__(self, uid: int | None, timeout: float, memory_bytes: int) -> None:
        self.uid = uid
        self.cpu_seconds = math.ceil(timeout) + 1  # CPU time per process; the wall clock is the real bound
        self.memory_bytes = memory_bytes

    def __call__(self) -> None:
        os.setsid()  # a process group of its own, killed as a whole
        for limit, value in (
            (resource.RLIMIT_CPU, self.cpu_seconds),
            (resource.RLIMIT_AS, self.memory_bytes),
            (resource.RLIMIT_NPROC, MAX_PROCESSES),
            (resource.RLIMIT_FSIZE, MAX_FILE_BYTES),
            (resource.RLIMIT_NOFILE, MAX_OPEN_FILES),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(limit, (value, value))
        if self.uid is not None:
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)


class SwitchUid:
    def __init__(self, uid: int) -> None:
        self.uid = uid

    def __call__(self) -> None:
        os.setgroups([])
        os.setgid(self.uid)
        os.setuid(self.uid)
        if self.uid < BASE_UID or os.getuid() != self.uid or os.geteuid() != self.uid:
            raise PermissionError("refusing to run as anything but the sandbox uid")


def release_locks(locks: dict[int, int]) -> None:
    for fd in locks.values():
        os.close(fd)  # closing the descriptor releases its flock
    locks.clear()


def has_processes(uid: int) -> bool:
    """Whether any process (zombies included) still runs as `uid`: a scan of /proc."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    return True
    return False


def system_links() -> list[str]:
    """/bin, /lib... are symlinks into /usr on merged-/usr systems (Debian 12): recreate them as such."""
    args: list[str] = []
    for path in SYSTEM_LINKS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


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


def prepare_job_dir(code: str) -> Path:
    job_dir = Path(tempfile.mkdtemp(prefix="codementor-sandbox-"))
    job_dir.chmod(0o755)  # readable by the slot's uid, writable by nobody but us
    (job_dir / "harness.py").write_text(HARNESS_SOURCE)
    (job_dir / "main.py").write_text(code, errors="surrogatepass")
    return job_dir


def build_stdin(code: str, tests: list[dict]) -> bytes:
    return build_job(code, tests).encode("utf-8", "surrogatepass")


def warn_no_isolation() -> None:
    global _warned_no_isolation
    if not _warned_no_isolation:
        _warned_no_isolation = True
        log.warning(
            "sandbox.no_isolation",
            detail="bubblewrap is not in use: code runs with rlimits and its own uid, without namespaces",
        )
