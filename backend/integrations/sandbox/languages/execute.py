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
import hashlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from backend.integrations.sandbox.base import (
    CHILD_OUTPUT_CAP,
    Report,
    RunResult,
    SandboxUnavailable,
    elapsed_ms,
    grade,
    record,
    slot,
)
from backend.integrations.sandbox.languages import Language, LanguageJob, graded_tests
from backend.integrations.sandbox.local import (
    BASE_UID,
    TMPFS_BYTES,
    UID_LOCK_DIR,
    UID_RANGE,
    ProcessLimits,
    exchange,
    system_links,
)

DEFAULT_TEST_TIMEOUT_MS = 5000  # one call or program; the whole run is bounded by the sandbox timeout
COMPILE_CACHE_ENTRIES = 1024


@dataclass(frozen=True)
class Compiled:
    output: str | None  # what the compile step made (for TypeScript, JavaScript); None on an error
    line: int | None  # the first error's line in the submission
    message: str | None


@dataclass
class Execution:
    report: bytearray  # what the harness wrote on its results channel
    diagnostics: bytearray  # the sandbox's own stdout/stderr (bwrap's errors)
    is_timeout: bool
    overflow: bool  # the report outgrew its cap
    duration_ms: float


def compile_key(language: Language, source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{language.name}:{language.version}:{digest}"


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
        self._compiled: OrderedDict[str, Compiled] = OrderedDict()  # compile cache, least recently used first

    @property
    def is_available(self) -> bool:
        """Other languages run only isolated: without bubblewrap they are not offered at all."""
        return self.bwrap is not None

    async def grade(
        self, language: Language, code: str, cases: list[dict], *, test_timeout_ms: int = DEFAULT_TEST_TIMEOUT_MS
    ) -> RunResult:
        """Run a submission in `language` against neutral cases and grade it (compiling it first, through
        the cache, when the language has a compile step)."""
        tests = graded_tests(cases, language.name)
        if language.compiled:
            started = time.perf_counter()
            compiled = (await self.compile(language, [code]))[0]
            if compiled.output is None:
                report = Report(syntax_error={"line": compiled.line, "message": compiled.message})
                duration = elapsed_ms(started, time.perf_counter())
                return record(self.backend, grade(tests, report, duration_ms=duration, is_timeout=False))
            code = compiled.output
        job = language.build_job(code, cases, output_cap=CHILD_OUTPUT_CAP, test_timeout_ms=test_timeout_ms)
        return await self.run(job, tests)

    async def compile(self, language: Language, sources: list[str]) -> list[Compiled]:
        """What `language`'s compile step makes of each source: from the cache, else all missing ones in one
        sandbox run. Safe to cache: no submission code runs in a compile run, and the key is the source hash
        with the toolchain's version."""
        keys = [compile_key(language, source) for source in sources]
        missing = {key: source for key, source in zip(keys, sources, strict=True) if key not in self._compiled}
        if missing:
            execution = await self._locked(language.build_compile_job(missing), self.timeout_seconds * 3)
            if execution.is_timeout:
                raise SandboxUnavailable(f"the {language.name} compiler did not finish in time")
            found: dict[str, Compiled] = {}
            for line in bytes(execution.report).split(b"\n"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and event.get("key") in missing and event["key"] not in found:
                    if event.get("event") == "compiled":
                        found[event["key"]] = Compiled(str(event.get("output") or ""), None, None)
                    elif event.get("event") == "compile_error":
                        line_no = event.get("line")
                        found[event["key"]] = Compiled(
                            None, line_no if isinstance(line_no, int) else None, str(event.get("message") or "")
                        )
            if set(found) != set(missing):
                detail = bytes(execution.diagnostics[:500]).decode("utf-8", "replace")
                raise SandboxUnavailable(f"the {language.name} compiler stopped: {detail}")
            for key, compiled in found.items():
                self._compiled[key] = compiled
                self._compiled.move_to_end(key)
            while len(self._compiled) > COMPILE_CACHE_ENTRIES:
                self._compiled.popitem(last=False)
        return [self._compiled[key] for key in keys]

    async def run(self, job: LanguageJob, tests: list[dict], *, timeout_seconds: float | None = None) -> RunResult:
        execution = await self._locked(job, timeout_seconds or self.timeout_seconds)
        report = Report.parse(bytes(execution.report).split(b"\n"))
        # A call or program over the harness's per-test limit is the run's timeout, as for Python.
        is_timeout = execution.is_timeout or any(event.get("error") == "timed out" for event in report.events.values())
        if not is_timeout and not report.is_started and report.syntax_error is None:
            detail = bytes(execution.diagnostics[:500]).decode("utf-8", "replace")
            raise SandboxUnavailable(f"the {job.language} sandbox did not start: {detail}")
        crash = None
        if execution.overflow:
            crash = "output limit exceeded"
        elif not is_timeout and not report.is_done:
            crash = "the program stopped the grader"
        result = grade(tests, report, duration_ms=execution.duration_ms, is_timeout=is_timeout, crash=crash)
        return record(self.backend, result)

    async def _locked(self, job: LanguageJob, seconds: float) -> Execution:
        """Run a job in a slot, as the slot's uid."""
        if self.bwrap is None:
            raise SandboxUnavailable("bubblewrap is required for languages other than Python")
        async with slot(self._semaphore, self.queue_timeout_seconds):
            if self._free is None:
                self._free = self._claim(self._max_concurrency) if os.geteuid() == 0 else [None] * self._max_concurrency
            uid = self._free.pop()
            try:
                return await self._execute(job, uid, seconds)
            finally:
                if self._free is not None:
                    self._free.append(uid)

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
        for source, target in job.ro_binds:
            binds += ["--ro-bind", source, target]
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

    async def _execute(self, job: LanguageJob, uid: int | None, seconds: float) -> Execution:
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
        return Execution(report_bytes, diagnostics, is_timeout, overflow, duration)


def prepare_job_dir(job: LanguageJob) -> Path:
    job_dir = Path(tempfile.mkdtemp(prefix="codementor-lang-"))
    job_dir.chmod(0o755)  # readable by the slot's uid, writable by nobody but us
    for name, content in job.files.items():
        (job_dir / name).write_text(content, errors="surrogatepass")
    return job_dir
