"""How one run or compile is started: its job dir, its command line, and what goes in and comes out.

The command line is prlimit, setpriv, then bubblewrap and the toolchain's command. `Commands.confine` is
the one confinement every toolchain runs under (docs/SECURITY.md): the Python harness, another language's
harness (languages/toolchains.py) and a compile step (compiled.py) differ only in their command, read-only
binds, environment and limits.

The Python harness (which also supervises JavaScript and Java) goes into each job dir precompiled
(`harness_files`): harness.pyc and the child's program, child.pyc, compiled once per runner by the sandbox's
own interpreter. Run from source, each run compiled both again (~11 ms of CPU: a main script never gets a
.pyc of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import marshal
import os
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from backend.integrations.sandbox.base import HARNESS_SOURCE
from backend.integrations.sandbox.confinement import (
    RunLimits,
    device_args,
    seccomp_program,
    switch_uid,
    system_links,
)
from backend.integrations.sandbox.harness.main import CHILD_PYC
from backend.integrations.sandbox.harness.supervise import child_program
from backend.integrations.sandbox.languages.toolchains import TOOLCHAINS as LANGUAGE_TOOLCHAINS
from backend.integrations.sandbox.protocol import Job

log = structlog.get_logger(__name__)

PYTHON = "/usr/bin/python3"  # the system interpreter: it lives under /usr, the only tree the sandbox sees
MAX_REPORT_BYTES = 8 * 1024 * 1024
MAX_DIAGNOSTIC_BYTES = 16 * 1024
TOOLCHAINS = ("python",)  # run by the Python harness alone (languages/toolchains.py has the others)
PRECOMPILE_TIMEOUT_SECONDS = 30.0
# Run by the sandbox's interpreter: (name, source) pairs in, their .pyc files out, both as marshal data. The
# header is the interpreter's magic number, flags 0 and a zero mtime and size: Python checks only the magic
# of a .pyc it is asked to run as a script.
PRECOMPILE = """import importlib.util, marshal, sys
header = importlib.util.MAGIC_NUMBER + bytes(12)
sources = marshal.loads(sys.stdin.buffer.read())
codes = [header + marshal.dumps(compile(text, name, "exec", dont_inherit=True)) for name, text in sources]
sys.stdout.buffer.write(marshal.dumps(codes))
"""


@dataclass(frozen=True)
class HarnessFiles:
    """The Python harness as the runner writes it into a job dir: its files, the one `python` runs."""

    files: dict[str, str | bytes]
    main: str
    python: str = PYTHON  # the sandbox's interpreter, which runs the harness and its children


@functools.cache
def harness_files(python: str = PYTHON) -> HarnessFiles:
    """harness.pyc and child.pyc, compiled once (per process) by `python` itself, so that their bytecode is
    that interpreter's whatever Python runs the runner; the source where that fails (the harness then
    compiles itself and its child at every run, as on Piston)."""
    sources = [("harness.py", HARNESS_SOURCE), ("child.py", child_program(HARNESS_SOURCE))]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and program
            [python, "-I", "-S", "-c", PRECOMPILE],
            input=marshal.dumps(sources),
            capture_output=True,
            env={},
            timeout=PRECOMPILE_TIMEOUT_SECONDS,
            check=True,
        )
        harness, child = marshal.loads(done.stdout)  # noqa: S302 - written by our own interpreter
    except (OSError, subprocess.SubprocessError, ValueError, EOFError, TypeError) as error:
        log.warning("sandbox.harness_not_precompiled", python=python, detail=str(error)[:200])
        return HarnessFiles({"harness.py": HARNESS_SOURCE}, "harness.py", python)
    return HarnessFiles({"harness.pyc": harness, CHILD_PYC: child}, "harness.pyc", python)


@dataclass(frozen=True)
class Commands:
    bwrap: str | None  # None: the unisolated fallback (Python only)
    limits: RunLimits
    harness: HarnessFiles  # what the Python harness's runs start (precompiled or not)

    def command(
        self, job_dir: Path, toolchain: str, results_fd: int, uid: int | None, seconds: float, filter_fd: int | None
    ) -> list[str]:
        if toolchain in LANGUAGE_TOOLCHAINS:
            return self.language_command(job_dir, toolchain, results_fd, uid, seconds, filter_fd)
        harness_file = self.harness.main
        harness_args = ["--results-fd", str(results_fd)]
        if uid is not None or (self.bwrap is not None):
            # A uid of our own, or a PID namespace: kill(-1) from the harness reaches only this run.
            harness_args.append("--reap-all")
        wrappers = self.limits.prlimit(seconds) + (switch_uid(uid) if uid is not None else [])
        if not (self.bwrap is not None):
            return [*wrappers, self.harness.python, "-I", "-S", str(job_dir / harness_file), *harness_args]
        return [
            *wrappers,
            *self.confine(job_dir, filter_fd),
            self.harness.python,
            "-I",
            "-S",
            f"/job/{harness_file}",
            *harness_args,
        ]

    def language_command(
        self,
        job_dir: Path,
        name: str,
        results_fd: int,
        uid: int | None,
        seconds: float,
        filter_fd: int | None,
        *,
        compile_out: Path | None = None,
        prepare: bool = False,
    ) -> list[str]:
        """Another language's toolchain (languages/toolchains.py): the same confinement, with the toolchain's
        own command, read-only binds and address-space / thread / data limits (node, the JVM and Go reserve
        far more address space than they use). With `compile_out`, its compile step instead: the compile's
        command and limits, and `compile_out` writable at /out."""
        toolchain = LANGUAGE_TOOLCHAINS[name]
        custom = ("--as=", "--nproc=", "--fsize=") if compile_out is not None else ("--as=", "--nproc=")
        limits = [arg for arg in self.limits.prlimit(seconds) if not arg.startswith(custom)]
        binds = [arg for source, target in toolchain.ro_binds for arg in ("--ro-bind", source, target)]
        environment = ["--setenv", "PATH", "/usr/bin", "--setenv", "HOME", "/tmp"]  # noqa: S108 - its own tmpfs
        if compile_out is not None and toolchain.compile is not None:
            step = toolchain.compile
            limits[1:1] = [
                f"--as={step.address_space_bytes}", f"--nproc={step.max_processes}", f"--fsize={step.output_bytes}",
                *([f"--data={step.data_bytes}"] if step.data_bytes else []),
            ]  # fmt: skip
            binds += ["--bind", str(compile_out), "/out"]
            command = list(step.prepare if prepare and step.prepare else step.command)
        else:
            limits[1:1] = [f"--as={toolchain.address_space_bytes}", f"--nproc={toolchain.max_processes}"]
            if toolchain.data_share:
                limits.insert(1, f"--data={self.limits.process_bytes}")
            environment += [arg for key, value in toolchain.environment for arg in ("--setenv", key, value)]
            command = [*toolchain.command, "--results-fd", str(results_fd)]
            if toolchain.supervised:  # `command` holds the Python harness's arguments
                command[:0] = [self.harness.python, "-I", "-S", f"/job/{self.harness.main}"]
        wrappers = limits + (switch_uid(uid) if uid is not None else [])
        confinement = self.confine(job_dir, filter_fd, environment=environment, binds=binds)
        return [*wrappers, *confinement, *command]

    def confine(
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


async def start_process(
    argv: Sequence[str],
    *,
    pass_fds: Sequence[int],
    cwd: Path,
    stop: Callable[[asyncio.subprocess.Process], Awaitable[None]],
) -> asyncio.subprocess.Process:
    """Start a run's process (its own session and process group, our pipes, no environment). Cancelled while
    it starts (the client went away), it is let finish starting, then stopped with `stop` (its group, and
    whatever of it left the group: the slot's uid) before the cancellation goes on. asyncio's own clean-up of
    a half-started subprocess kills only our child and then waits for its pipes to close: a namespace init
    whose bwrap died before setting PR_SET_PDEATHSIG survives that, holding the pipes, and the wait (with the
    run's slot) never ended (tests/fault/test_sandbox_cancellation.py hung one time in four)."""
    starting = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=tuple(pass_fds),
            env={},
            cwd=cwd,
            start_new_session=True,  # a process group of its own, killed as a whole
        )
    )
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):  # it did not start at all (OSError): nothing to stop
            await stop(await starting)
        raise


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


def prepare_job_dir(job: Job, uid: int | None, harness: HarnessFiles) -> Path:
    """The job's files and its harness, readable by the run's own uid (group) and nobody else's."""
    job_dir = Path(tempfile.mkdtemp(prefix="codementor-sandbox-"))
    files: dict[str, str | bytes] = dict(job.files)
    toolchain = LANGUAGE_TOOLCHAINS.get(job.toolchain)
    if toolchain is not None:
        files.update(toolchain.files)
    if toolchain is None or toolchain.supervised:
        files.update(harness.files)
    for name, content in files.items():
        if isinstance(content, bytes):
            (job_dir / name).write_bytes(content)
        else:
            (job_dir / name).write_text(content, errors="surrogatepass")
        if uid is not None:
            os.chown(job_dir / name, 0, uid)
            (job_dir / name).chmod(0o640)
    if uid is not None:
        os.chown(job_dir, 0, uid)  # a concurrent run (another uid) cannot read this run's code
        job_dir.chmod(0o750)
    else:
        job_dir.chmod(0o755)  # development as an ordinary user: the run has our uid anyway
    return job_dir


def subdirectory(job_dir: Path, name: str, uid: int | None) -> Path:
    """A directory in the job dir for a compiled artifact's files (root's, read-only to the run)."""
    directory = job_dir / name
    directory.mkdir()
    if uid is not None:
        os.chown(directory, 0, uid)
        directory.chmod(0o750)
    return directory
