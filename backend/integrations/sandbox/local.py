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
import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import structlog

from backend.integrations.sandbox.analysis import StyleCache
from backend.integrations.sandbox.base import (
    DEFAULT_QUEUE_TIMEOUT_SECONDS,
    RunResult,
    Sandbox,
    SandboxUnavailable,
    build_job,
    elapsed_ms,
    record,
    slot,
)
from backend.integrations.sandbox.commands import (
    PYTHON,
    TOOLCHAINS,
    Commands,
    exchange,
    harness_files,
    prepare_job_dir,
    seccomp_pipe,
    start_process,
    subdirectory,
)
from backend.integrations.sandbox.compiled import (
    DEFAULT_MAX_BYTES as DEFAULT_ARTIFACT_BYTES,
)
from backend.integrations.sandbox.compiled import (
    Artifact,
    ArtifactCache,
    cache_key,
    compile_error,
    report_of,
    style_event,
)
from backend.integrations.sandbox.confinement import RunLimits, switch_uid
from backend.integrations.sandbox.languages.toolchains import TOOLCHAINS as LANGUAGE_TOOLCHAINS
from backend.integrations.sandbox.languages.toolchains import Toolchain
from backend.integrations.sandbox.protocol import (
    DEFAULT_TOOLCHAIN,
    MAX_COMPILE_SECONDS,
    Execution,
    Job,
    grade_execution,
)
from backend.integrations.sandbox.uids import BASE_UID, UidPool

log = structlog.get_logger(__name__)

KILL = "/usr/bin/kill"
PYTHON_SOURCE = "main.py"  # the submission's file in a Python job (python_job)
STOP_TIMEOUT_SECONDS = 5.0
DONE_LINE = b'\n{"event": "done"}\n'  # the harness's last line, exactly as it writes it

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
        artifact_cache_bytes: int = DEFAULT_ARTIFACT_BYTES,
        python: str = PYTHON,
    ) -> None:
        """`use_isolation`: None = bubblewrap when installed; False = never (the fallback); True = required.
        `python`: the interpreter that runs the Python harness (under bubblewrap it must live in /usr)."""
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
        self.uids = UidPool(max_concurrency, can_switch_uid=self.can_switch_uid)
        self._artifacts: ArtifactCache | None = None
        self.artifact_cache_bytes = artifact_cache_bytes
        self.harness = harness_files(python)  # precompiled once per process, by that interpreter itself
        self.styles = StyleCache()  # Python's style events by source (analysis.py)

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
        uid = self.uids.take()
        execution = None
        try:
            toolchain = LANGUAGE_TOOLCHAINS.get(job.toolchain)
            if toolchain is not None and toolchain.compile is not None:
                execution = await self._compile_and_run(uid, job, toolchain)
            elif job.toolchain == DEFAULT_TOOLCHAIN:
                execution = await self._execute_python(uid, job)
            else:
                execution = await self._execute_as(uid, job)
        finally:
            self.uids.give_back(uid, execution is not None and execution.clean)
        return execution

    @property
    def commands(self) -> Commands:
        """The command lines of this sandbox's runs (bubblewrap's path as it is now: tests break it)."""
        return Commands(self.bwrap, self.limits, self.harness)

    @property
    def claimed_uids(self) -> frozenset[int]:
        """Every uid this sandbox holds (free, busy or quarantined)."""
        return self.uids.claimed

    @property
    def artifacts(self) -> ArtifactCache:
        """The compiled artifacts of this sandbox (created at the first compile)."""
        if self._artifacts is None:
            self._artifacts = ArtifactCache(max_bytes=self.artifact_cache_bytes)
        return self._artifacts

    async def close(self) -> None:
        self.uids.close()
        if self._artifacts is not None:
            self._artifacts.close()

    async def _compile_and_run(self, uid: int | None, job: Job, toolchain: Toolchain) -> Execution:
        """Compile the job unless its artifact is cached (compiled.py), then run it: one job."""
        compile = toolchain.compile
        assert compile is not None
        prepared = None
        if compile.prepare is not None:
            key = cache_key(toolchain, {}, prepare=True)
            prepared, _ = await self.artifacts.obtain(
                key, lambda out: self._compile(uid, replace(job, files={}), key, None, out, prepare=True),
                max_bytes=compile.output_bytes,
            )  # fmt: skip
            if prepared.path is None:
                raise SandboxUnavailable(f"the {toolchain.name} harness did not compile: {prepared.error}")
        key = cache_key(toolchain, job.files)
        for _ in range(2):  # again when it was evicted while this job waited for another's compile
            artifact, compiled_now = await self.artifacts.obtain(
                key, lambda out: self._compile(uid, job, key, prepared, out), max_bytes=compile.output_bytes
            )
            if artifact.path is None or artifact.path.is_dir():
                break
        compile_ms = artifact.compile_ms if compiled_now else None
        if artifact.timed_out:
            detail = f"the compile did not finish within {min(compile.timeout_seconds, MAX_COMPILE_SECONDS):g} s"
            return Execution(True, False, False, None, "", detail, artifact.compile_ms or 0.0, compile_ms)
        if artifact.path is None:
            assert artifact.error is not None
            return Execution(False, False, True, None, report_of(artifact.error), "", 0.0, compile_ms)
        execution = await self._execute_as(uid, job, artifact)
        style = style_event(compile, artifact)  # first: the run's own events cannot come before it
        report = execution.report if style is None else json.dumps(style) + "\n" + execution.report
        return replace(execution, report=report, compile_ms=compile_ms)

    async def _execute_python(self, uid: int | None, job: Job) -> Execution:
        """A Python run, its report led by the runner's own `style` event (pyflakes and the static measures,
        analysis.py: in a thread while the run starts, or cached); the API takes the first `style` event."""
        checking = asyncio.ensure_future(self.styles.event(job.files.get(PYTHON_SOURCE, "")))
        try:
            execution = await self._execute_as(uid, job)
        except BaseException:
            checking.cancel()  # a thread already checking finishes on its own; nobody waits for it
            raise
        return replace(execution, report=json.dumps(await checking) + "\n" + execution.report)

    async def _compile(
        self, uid: int | None, job: Job, key: str, prepared: Artifact | None, out: Path, *, prepare: bool = False
    ) -> Artifact:
        """One compile under the run's confinement, with the compile's limits; `out` becomes /out."""
        compile = LANGUAGE_TOOLCHAINS[job.toolchain].compile
        assert compile is not None
        job_dir = prepare_job_dir(job, uid, self.harness)
        try:
            if prepared is not None:
                self.artifacts.link_into(prepared, subdirectory(job_dir, "prepared", uid))
            if uid is not None:
                os.chown(out, 0, uid)
                os.chmod(out, 0o770)  # noqa: S103 - group = the slot's uid, which writes the artifact
            seconds = compile.prepare_timeout_seconds if prepare else min(compile.timeout_seconds, MAX_COMPILE_SECONDS)
            execution = await self._run_confined(
                uid,
                job_dir,
                lambda fd, seccomp: self.commands.language_command(
                    job_dir, job.toolchain, fd, uid, seconds, seccomp, compile_out=out, prepare=prepare
                ),
                b"",
                seconds,
                expect_done=False,
            )
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(job_dir, ignore_errors=True)
        if execution.timed_out:
            return Artifact(key, None, None, timed_out=True, compile_ms=execution.duration_ms)
        if execution.returncode == 0:
            return Artifact(key, out, None, compile_ms=execution.duration_ms)
        if execution.diagnostics.startswith("bwrap:"):
            raise SandboxUnavailable(f"cannot start the sandbox: {execution.diagnostics[:200]}")
        error, is_certain = compile_error(compile, execution.diagnostics, execution.returncode)
        return Artifact(key, None, error, cacheable=is_certain, compile_ms=execution.duration_ms)

    async def _execute_as(self, uid: int | None, job: Job, artifact: Artifact | None = None) -> Execution:
        # Synchronous on purpose: a few small files, well under a millisecond, and no await between making
        # the directory and the try/finally that removes it (a cancellation there would leak it).
        job_dir = prepare_job_dir(job, uid, self.harness)
        try:
            if artifact is not None:
                self.artifacts.link_into(artifact, subdirectory(job_dir, "build", uid))
            return await self._run_confined(
                uid,
                job_dir,
                lambda fd, seccomp: self.commands.command(
                    job_dir, job.toolchain, fd, uid, job.timeout_seconds, seccomp
                ),
                job.stdin.encode("utf-8", "surrogatepass"),
                job.timeout_seconds,
            )
        finally:
            # rmtree's own closing of its directory descriptor is not covered by ignore_errors: the run is
            # over, so a leftover temp dir must not turn it into a server error.
            with contextlib.suppress(OSError):
                shutil.rmtree(job_dir, ignore_errors=True)

    async def _run_confined(
        self,
        uid: int | None,
        job_dir: Path,
        command: Callable[[int, int | None], list[str]],
        stdin: bytes,
        seconds: float,
        *,
        expect_done: bool = True,
    ) -> Execution:
        """Start `command(results_fd, seccomp_fd)` in `job_dir`, feed it `stdin`, collect its report and
        diagnostics within `seconds`, and stop whatever is left of it. Without `expect_done` (a compile) a
        process that exited is clean: its PID namespace died with it."""
        read_fd, write_fd = os.pipe()
        filter_fd = seccomp_pipe() if self.is_isolated else None
        try:
            started = time.perf_counter()
            try:
                process = await start_process(
                    command(write_fd, filter_fd),
                    pass_fds=(write_fd,) if filter_fd is None else (write_fd, filter_fd),
                    cwd=job_dir,
                    stop=lambda started: self._stop(started, uid, is_clean=False),
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
                is_clean = not is_timeout and (DONE_LINE in b"\n" + report_bytes or not expect_done)
                await self._stop(process, uid, is_clean)
            duration = elapsed_ms(started, time.perf_counter())
        finally:
            if read_fd >= 0:
                os.close(read_fd)
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


def python_job(code: str, tests: list[dict], timeout: float, queue_timeout: float, user: str | None) -> Job:
    """The Python harness's job: the code as main.py, the tests' inputs (never expectations) on stdin."""
    return Job(
        toolchain=DEFAULT_TOOLCHAIN,
        files={PYTHON_SOURCE: code},
        stdin=build_job(code, tests),
        timeout_seconds=timeout,
        queue_timeout_seconds=queue_timeout,
        user=user or f"anonymous:{uuid.uuid4().hex}",  # no key: no queue of its own to wait in
    )


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
