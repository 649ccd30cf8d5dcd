"""Running untrusted submissions against exercise tests, never in the server process.

`create_sandbox(settings)` builds the backend SANDBOX_BACKEND names: `local` (a client of the sandbox runner
at SANDBOX_URL, `python -m backend sandbox`, which runs each job under bubblewrap — or, where allowed,
rlimits and a uid of its own; see runner.py, protocol.py) or `piston` (a Piston code-execution service).
The API process itself never starts untrusted code. The app keeps one in `app.extensions["sandbox"]`
and closes it on shutdown.

Why a submission cannot forge its grade: the sandbox is never told what a test expects. A trusted harness
(`harness/`, one file there) runs in the sandbox as the parent of the user's code; it sends only the code
and each test's `setup`/`call` or `stdin` in, runs user code in freshly exec'd interpreters that hold
neither the result channel nor the job (they are handed one test at a time, so no process holds a test it is
not running), and reports what each call returned (as a tagged tree of builtin values, by exact type) or
what each program printed, and what was printed during which test. Hidden tests' output and exception text
are never shown (`services/submissions/shown.py` returns only their name, pass/fail and `TestOutcome.failure`).
The server decodes those reports and compares them with the expected values itself (`base.grade`). So
printing a fake "all passed" report to stdout/stderr does nothing (children's output is captured by the
harness as data), writing to inherited descriptors reaches at most the harness's private pipes, and even a
forged report on the result channel could only claim values, which pass only if they are the right answers.
The harness is non-dumpable, so code of the same uid cannot ptrace it, read its memory or reopen its
descriptors through /proc; under bubblewrap it is the PID namespace's init, which nothing inside can signal.
A harness that is stopped anyway (the fallback has no namespace) yields a graded `error` or `timeout`, never
a pass: tests without a reported result fail.
"""

from __future__ import annotations

from backend.config import Settings
from backend.integrations.sandbox.base import RunResult, Sandbox, SandboxBusy, SandboxUnavailable, TestOutcome
from backend.integrations.sandbox.client import RunnerSandbox
from backend.integrations.sandbox.local import LocalSandbox
from backend.integrations.sandbox.piston import PistonSandbox

__all__ = [
    "LocalSandbox",
    "PistonSandbox",
    "RunResult",
    "RunnerSandbox",
    "Sandbox",
    "SandboxBusy",
    "SandboxUnavailable",
    "TestOutcome",
    "create_sandbox",
]


def create_sandbox(settings: Settings) -> Sandbox:
    if settings.sandbox_backend == "piston":
        if not settings.piston_url:
            raise ValueError("SANDBOX_BACKEND=piston needs PISTON_URL")
        return PistonSandbox(
            settings.piston_url,
            timeout_seconds=settings.sandbox_timeout_seconds,
            memory_mb=settings.sandbox_memory_mb,
            max_concurrency=settings.sandbox_max_concurrency,
            queue_timeout_seconds=settings.sandbox_queue_timeout_seconds,
        )
    return RunnerSandbox(
        settings.sandbox_url,
        timeout_seconds=settings.sandbox_timeout_seconds,
        queue_timeout_seconds=settings.sandbox_queue_timeout_seconds,
    )
