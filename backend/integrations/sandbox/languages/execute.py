"""Running a `LanguageJob` in bubblewrap, with the Python sandbox's isolation and limits.

Interim: this drives bwrap from the calling process the way `local.py` does (the same namespaces, read-only
/usr, private /tmp, no network, no /etc, no environment, a uid of its own per slot, rlimits), until the
separate sandbox runner process (issue 13) takes language-neutral jobs and this becomes a job description
handed to it. The job dir is read-only; a toolchain that needs a writable cache gets it in the private /tmp.
Grading is `base.grade`, on the server, exactly as for Python.
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
from pathlib import Path

from backend.integrations.sandbox.base import (
    Report,
    RunResult,
    SandboxUnavailable,
    elapsed_ms,
    grade,
    record,
    slot,
)
from backend.integrations.sandbox.languages import LanguageJob
from backend.integrations.sandbox.local import (
    BASE_UID,
    TMPFS_BYTES,
    UID_LOCK_DIR,
    UID_RANGE,
    ProcessLimits,
    exchange,
    system_links,
)

MAX_REPORT_BYTES = 8 * 1024 * 1024
MAX_DIAGNOSTIC_BYTES = 16 * 1024


class LanguageSandbox:
    """Runs language jobs under bubblewrap; at most `max_concurrency` at once, each with its own uid."""

    backend = "local"

    def __init__(self, *, timeout_seconds: float, max_concurrency: int, queue_timeout_seconds: float) -> None:
        self.bwrap = shutil.which("bwrap")
        self.timeout_seconds = timeout_seconds
        self.queue_timeout_seconds = queue_timeout_seconds
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._max_concurrency = max_concurrency
        self._locks: dict[int, int] = {}
        self._free: list[int | None] | None = None

    @property
    def is_available(self) -> bool:
        """Other languages run only isolated: without bubblewrap they are not offered at all."""
        return self.bwrap is not None

    async def run(self, job: LanguageJob, tests: list[dict], *, timeout_seconds: float | None = None) -> RunResult:
        if self.bwrap is None:
            raise SandboxUnavailable("bubblewrap is required for languages other than Python")
        seconds = timeout_seconds or self.timeout_seconds
        async with slot(self._semaphore, self.queue_timeout_seconds):
            if self._free is None:
                self._free = self._claim(self._max_concurrency) if os.geteuid() == 0 else [None] * self._max_concurrency
            uid = self._free.pop()
            try:
                result = await self._run(job, tests, uid, seconds)
            finally:
                if self._free is not None:
                    self._free.append(uid)
        return record(self.backend, result)

    async def close(self) -> None:
        for fd in self._locks.values():
            os.close(fd)
        self._locks.clear()
        self._free = None

    def _claim(self, count: int) -> list[int | None]:
        """Uids from the Python sandbox's range, each held with the same per-uid flock, so no two slots on
        the host (of either sandbox, in any worker) ever share one."""
        UID_LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        uids: list[int | None] = []
        for uid in range(BASE_UID + UID_RANGE - 1, BASE_UID - 1, -1):  # from the top: Python claims from the bottom
            fd = os.open(UID_LOCK_DIR / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._locks[uid] = fd
            uids.append(uid)
            if len(uids) == count:
                return uids
        raise SandboxUnavailable("no free sandbox uid")

    def command(self, job: LanguageJob, job_dir: Path, results_fd: int) -> list[str]:
        assert self.bwrap is not None
        binds: list[str] = []
        for path in job.ro_binds:
            binds += ["--ro-bind", path, path]
        env: list[str] = []
        home = "/tmp"  # noqa: S108 - the sandbox's private tmpfs
        for name, value in {"PATH": "/usr/bin", "HOME": home, **job.env}.items():
            env += ["--setenv", name, value]
        return [
            self.bwrap,
            "--unshare-all",
            "--as-pid-1",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            *env,
            "--cap-drop", "ALL",
            "--ro-bind", "/usr", "/usr",
            *system_links(),
            *binds,
            "--proc", "/proc",
            "--dev", "/dev",
            "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp",  # noqa: S108 - a private tmpfs inside the sandbox
            "--ro-bind", str(job_dir), "/job",
            "--chdir", "/job",
            "--hostname", "sandbox",
            "--", *job.command, "--results-fd", str(results_fd),
        ]  # fmt: skip

    async def _run(self, job: LanguageJob, tests: list[dict], uid: int | None, seconds: float) -> RunResult:
        # Synchronous on purpose (a few small files), as in local.py: no await before the try that removes it.
        job_dir = prepare_job_dir(job)
        read_fd, write_fd = os.pipe()
        try:
            started = time.perf_counter()
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.command(job, job_dir, write_fd),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    pass_fds=(write_fd,),
                    env={},
                    cwd=job_dir,
                    preexec_fn=ProcessLimits(uid, seconds, job.address_space_bytes),
                )
            except OSError as error:
                raise SandboxUnavailable(f"cannot start the sandbox: {error}") from error
            finally:
                os.close(write_fd)
            pipe = os.fdopen(read_fd, "rb", 0)
            read_fd = -1
            transport: asyncio.ReadTransport | None = None
            report_bytes, diagnostics = bytearray(), bytearray()
            is_timeout = overflow = False
            try:
                reader = asyncio.StreamReader()
                transport, _ = await asyncio.get_running_loop().connect_read_pipe(
                    lambda: asyncio.StreamReaderProtocol(reader), pipe
                )
                async with asyncio.timeout(seconds):
                    overflow = await exchange(process, job.stdin, reader, report_bytes, diagnostics)
                    await process.wait()
            except TimeoutError:
                is_timeout = True
            finally:
                if transport is not None:
                    transport.close()
                elif not pipe.closed:
                    pipe.close()
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()
            duration = elapsed_ms(started, time.perf_counter())
        finally:
            if read_fd >= 0:
                os.close(read_fd)
            with contextlib.suppress(OSError):
                shutil.rmtree(job_dir, ignore_errors=True)
        report = Report.parse(bytes(report_bytes).split(b"\n"))
        # A call or program over the harness's per-test limit is the run's timeout, as for Python.
        is_timeout = is_timeout or any(event.get("error") == "timed out" for event in report.events.values())
        if not is_timeout and not report.is_started and report.syntax_error is None:
            detail = bytes(diagnostics[:500]).decode("utf-8", "replace")
            raise SandboxUnavailable(f"the {job.language} sandbox did not start: {detail}")
        crash = None
        if overflow:
            crash = "output limit exceeded"
        elif not is_timeout and not report.is_done:
            crash = "the program stopped the grader"
        return grade(tests, report, duration_ms=duration, is_timeout=is_timeout, crash=crash)


def prepare_job_dir(job: LanguageJob) -> Path:
    job_dir = Path(tempfile.mkdtemp(prefix="codementor-lang-"))
    job_dir.chmod(0o755)  # readable by the slot's uid, writable by nobody but us
    for name, content in job.files.items():
        (job_dir / name).write_text(content, errors="surrogatepass")
    return job_dir
