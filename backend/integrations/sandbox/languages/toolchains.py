"""The sandbox runner's toolchains for languages other than Python: what it writes, runs and allows.

A toolchain is named in a runner job (`protocol.Job.toolchain`); the runner (local.py) writes its support
files next to the job's files, runs `command` under bubblewrap with `--results-fd N` appended, and applies
its limits. Imported by the runner, so nothing here may import the runner or the API.

Limits, measured under bubblewrap on this 2-core host: node reserves far more address space than it uses
(V8's heap cage), so RLIMIT_AS cannot bound its memory; each node process gets 1 GiB of address space (the
TypeScript compiler 2 GiB) and bounds its heap itself (`--max-old-space-size`). RLIMIT_NPROC counts threads:
with one V8 worker and no GC threads node runs 4, and a JavaScript run is bwrap, the (Python) harness and one
node child at a time (12 leaves room for what a submission starts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from backend.integrations.sandbox.base import HARNESS_SOURCE

HERE = Path(__file__).parent
NODE = "/usr/bin/node"
PYTHON = "/usr/bin/python3"
GIB = 1024 * 1024 * 1024
# One V8 worker thread and no GC threads (4 threads instead of ~10); 128 MiB of heap; a deeper stack.
NODE_FLAGS = ("--v8-pool-size=1", "--single-threaded-gc", "--max-old-space-size=128", "--stack-size=2000")
# The pinned compiler, installed with `npm ci` in languages/typescript (by .ci/run and the Dockerfile).
TYPESCRIPT_DIR = HERE / "typescript" / "node_modules" / "typescript"


@dataclass(frozen=True)
class Toolchain:
    name: str
    files: dict[str, str]  # support files written into the job dir next to the job's own
    command: tuple[str, ...]  # run in /job; the runner appends `--results-fd N`
    address_space_bytes: int  # RLIMIT_AS per process
    max_processes: int  # RLIMIT_NPROC of the run's uid (threads count)
    ro_binds: tuple[tuple[str, str], ...] = field(default=())  # (host path, sandbox path), read-only


def _read(name: str) -> str:
    return (HERE / name).read_text()


TOOLCHAINS: dict[str, Toolchain] = {
    toolchain.name: toolchain
    for toolchain in (
        Toolchain(
            # The Python harness supervises (it holds the job and is non-dumpable); node runs the submission:
            # harness.js for the calls, main.js itself for each program test (harness/main.py, `--node`).
            # Always under bubblewrap, so `--reap-all` (kill(-1) after each child) reaches this run alone.
            name="javascript",
            files={"harness.py": HARNESS_SOURCE, "harness.js": _read("harness.js")},
            command=(PYTHON, "-I", "-S", "/job/harness.py", "--reap-all", "--node", ",".join((NODE, *NODE_FLAGS))),
            address_space_bytes=GIB,
            max_processes=12,
        ),
        Toolchain(
            # The compile run of TypeScript: no submission code runs in it (see compile_ts.js).
            name="typescript-compile",
            files={"compile_ts.js": _read("compile_ts.js"), "sandbox.d.ts": _read("sandbox.d.ts")},
            command=(NODE, *NODE_FLAGS, "--max-old-space-size=256", "/job/compile_ts.js"),
            address_space_bytes=2 * GIB,
            max_processes=12,
            ro_binds=((str(TYPESCRIPT_DIR), "/opt/typescript"),),
        ),
    )
}
