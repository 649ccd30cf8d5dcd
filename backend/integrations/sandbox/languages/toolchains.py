"""The sandbox runner's toolchains for languages other than Python: what it writes, compiles, runs and allows.

A toolchain is named in a runner job (`protocol.Job.toolchain`); the runner (local.py) writes its support
files next to the job's files, runs `command` under bubblewrap with `--results-fd N` appended, and applies
its limits. A toolchain with a `compile` step is compiled first, in the same job (compiled.py): the runner
keys the job's files, the toolchain's support files and its compiler's identity (`Compile.identity`), and
runs the compile command only when its artifact cache has no entry for that key; the run then finds the
artifact read-only in `/job/build`. Imported by the runner and the API, so nothing here may import either,
or run anything at import.

Limits, measured under bubblewrap on this 2-core host: node reserves far more address space than it uses
(V8's heap cage), so RLIMIT_AS cannot bound its memory; each node process gets 1 GiB of address space (the
TypeScript compiler 2 GiB) and bounds its heap itself (`--max-old-space-size`). RLIMIT_NPROC counts threads:
with one V8 worker and no GC threads node runs 4, and a JavaScript run is bwrap, the (Python) harness and one
node child at a time (12 leaves room for what a submission starts). A Go program reserves ~700 MiB of
address space before its first allocation (the page allocator's summaries) but maps memory read-write only
as its heap grows, so Go is bounded by RLIMIT_DATA (`data_share`) instead, with address space to spare.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

HERE = Path(__file__).parent
NODE = "/usr/bin/node"
GIB = 1024 * 1024 * 1024
MIB = 1024 * 1024
# One V8 worker thread and no GC threads (4 threads instead of ~10); 128 MiB of heap; a deeper stack.
NODE_FLAGS = ("--v8-pool-size=1", "--single-threaded-gc", "--max-old-space-size=128", "--stack-size=2000")
# The pinned compiler, installed with `npm ci` in languages/typescript (by .ci/run and the Dockerfile).
TYPESCRIPT_DIR = HERE / "typescript" / "node_modules" / "typescript"
# Debian's golang-go: GOROOT with the standard library precompiled (pkg/<os>_<arch>/*.a, up to Go 1.19).
GOROOT = Path(os.path.realpath("/usr/lib/go"))
GO_DIR = HERE / "go"


@dataclass(frozen=True)
class StyleCheck:
    """A compile step's check of the submission's style: `binary`'s output in /out/style.out, either a unified
    diff of the submission against a formatter's layout of it (`diff`: gofmt, clang-format) or a compiler's
    `<file>:<line>: warning: ...` lines (`warnings`: javac's lint)."""

    name: str
    binary: str  # without it on the host, style is not checked (and the compile writes no style.out)
    output: Literal["diff", "warnings"]


@dataclass(frozen=True)
class Compile:
    """A compile step: `command` runs in /job (the job's and the toolchain's files, read-only) with a writable,
    empty /out; what it leaves in /out is the artifact. No submission code runs in a compile."""

    command: tuple[str, ...]
    # Compiles the toolchain's own files once (no job files), into /out; that artifact is then in
    # /job/prepared for every compile (Go: the harness package, compiled once per runner, not per job).
    prepare: tuple[str, ...] | None
    source: str  # the submission's file: a compile error's line is reported only when it is in this file
    # The first error in the compiler's output (stdout and stderr): groups `file`, `line`, `message`.
    error: re.Pattern[str]
    identity: tuple[str, ...]  # files whose size and mtime stand for the compiler's version in the cache key
    timeout_seconds: float = 20.0
    # The prepare step compiles trusted files only, once per runner, and may take longer (C++ precompiles the
    # standard headers: ~6 s of CPU, several times that on a loaded machine).
    prepare_timeout_seconds: float = 30.0
    address_space_bytes: int = 2 * GIB
    data_bytes: int | None = None  # RLIMIT_DATA per process, when set
    max_processes: int = 32
    output_bytes: int = 64 * MIB  # RLIMIT_FSIZE in the compile, and what one artifact may hold in all
    # What the compile leaves in /out/style.out for the style part of the grade (compiled.py `style_event`).
    # None: style is not checked in this language.
    style: StyleCheck | None = None


@dataclass(frozen=True)
class Toolchain:
    name: str
    files: dict[str, str]  # support files written into the job dir next to the job's own
    command: tuple[str, ...]  # run in /job; the runner appends `--results-fd N`
    address_space_bytes: int  # RLIMIT_AS per process
    max_processes: int  # RLIMIT_NPROC of the run's uid (threads count)
    ro_binds: tuple[tuple[str, str], ...] = field(default=())  # (host path, sandbox path), read-only
    environment: tuple[tuple[str, str], ...] = field(default=())  # besides PATH=/usr/bin and HOME=/tmp
    # RLIMIT_DATA per process is the run's per-process share of SANDBOX_MEMORY_MB (what RLIMIT_AS is for
    # Python): for runtimes that reserve far more address space than they use, but map memory as they go.
    data_share: bool = False
    compile: Compile | None = None
    requires: tuple[str, ...] = field(default=())  # host paths without which it is not installed
    # Run by the Python harness (harness/main.py), which the runner writes into the job dir (precompiled:
    # commands.harness_files) and starts with the system Python: `command` is then the harness's arguments.
    supervised: bool = False

    @property
    def installed(self) -> bool:
        return all(os.path.exists(path) for path in self.requires)


def _read(name: str) -> str:
    return (HERE / name).read_text()


GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
GO_ARCHIVES = GOROOT / "pkg" / f"linux_{GO_ARCH}"  # the standard library, precompiled
GO_TOOLS = GOROOT / "pkg" / "tool" / f"linux_{GO_ARCH}"


# Packages built with cgo in GOROOT's archives: a program linking them starts its threads with glibc, whose
# 8 MiB thread stacks exceed the run's RLIMIT_DATA (it could not even start). Left out of importcfg, so a
# submission importing one (or net/http...) fails to compile ("could not import net") instead.
GO_CGO_PACKAGES = frozenset({"net", "os/user", "plugin", "runtime/cgo"})


def go_importcfg() -> str:
    """The compiler's and linker's map from import path to archive: the standard library (but what needs
    cgo), and the harness package (compiled by the toolchain's prepare step)."""
    lines = ["packagefile codementor/harness=/job/prepared/harness.a"]
    archives = GO_ARCHIVES
    if archives.is_dir():
        for directory, _, names in os.walk(archives):
            for name in sorted(names):
                path = Path(directory) / name
                package = str(path.relative_to(archives).with_suffix(""))
                if name.endswith(".a") and package not in GO_CGO_PACKAGES:
                    lines.append(f"packagefile {package}={path}")
    return "\n".join(lines) + "\n"


def _go_files() -> dict[str, str]:
    files = {f"harness_{path.name}": path.read_text() for path in sorted(GO_DIR.glob("*.go"))}
    return {**files, "build.sh": (GO_DIR / "build.sh").read_text(), "importcfg": go_importcfg()}


CPP_DIR = HERE / "cpp"
GPP = "/usr/bin/g++"
CLANG_FORMAT = "/usr/bin/clang-format"  # optional: without it C++ style is not scored (languages/cpp/build.sh)


def _cc1plus() -> Path:
    """The C++ compiler proper of /usr/bin/g++ (its driver, a link to e.g. x86_64-linux-gnu-g++-12): its size
    and mtime stand for the compiler's version."""
    found = re.search(r"-(\d+)$", os.path.realpath(GPP))
    candidates = sorted(Path("/usr/lib/gcc").glob(f"*/{found.group(1) if found else '*'}/cc1plus"))
    return candidates[-1] if candidates else Path("/usr/lib/gcc/cc1plus")


CC1PLUS = _cc1plus()
CPP_FILES = ("sandbox.hpp", "value.cpp", "child.cpp", "parent.cpp", "build.sh")


# Debian's openjdk-17-jdk-headless, by its real directory: /usr/bin/java is a link through /etc/alternatives,
# which the sandbox does not have. The files of its conf/ are links into /etc/java-17-openjdk, bound read-only
# (the JVM does not start without conf/security/java.security).
JAVA_HOME = Path(os.path.realpath("/usr/bin/javac")).parent.parent
JAVA_CONF = Path(os.path.realpath(JAVA_HOME / "conf" / "security" / "java.security")).parent.parent
# The JVM of the call child and of each program (harness/main.py `--java`): C1 only, one compiler thread and a
# serial GC (~13 threads); heap, metaspace, class space, code cache and direct memory bounded, and one malloc
# arena (glibc reserves 64 MiB of address space per thread's arena otherwise), so that it fits
# `address_space_bytes`. UTF-8 everywhere: the sandbox has no locale.
JAVA_COMMAND = (
    "/usr/bin/env", "MALLOC_ARENA_MAX=1", str(JAVA_HOME / "bin" / "java"),
    "-XX:TieredStopAtLevel=1", "-XX:CICompilerCount=1", "-XX:+UseSerialGC", "-Xmx128m", "-Xss1m",
    "-XX:MaxMetaspaceSize=64m", "-XX:CompressedClassSpaceSize=32m", "-XX:ReservedCodeCacheSize=16m",
    "-XX:MaxDirectMemorySize=64m", "-XX:-UsePerfData", "-XX:+DisableAttachMechanism",
    "-Dfile.encoding=UTF-8", "-Dsun.stdout.encoding=UTF-8", "-Dsun.stderr.encoding=UTF-8",
    "--add-opens=java.base/java.io=ALL-UNNAMED",  # the call child names its inherited descriptors 3 and 4
)  # fmt: skip


def _java_binds() -> tuple[tuple[str, str], ...]:
    return () if JAVA_CONF.is_relative_to("/usr") else ((str(JAVA_CONF), str(JAVA_CONF)),)


TOOLCHAINS: dict[str, Toolchain] = {
    toolchain.name: toolchain
    for toolchain in (
        Toolchain(
            # The Python harness supervises (it holds the job and is non-dumpable); node runs the submission:
            # harness.js for the calls, main.js itself for each program test (harness/main.py, `--node`).
            # Always under bubblewrap, so `--reap-all` (kill(-1) after each child) reaches this run alone.
            name="javascript",
            files={"harness.js": _read("harness.js")},
            command=("--reap-all", "--node", ",".join((NODE, *NODE_FLAGS))),
            supervised=True,
            address_space_bytes=GIB,
            max_processes=12,
            requires=(NODE,),
        ),
        Toolchain(
            # The compile run of TypeScript: no submission code runs in it (see compile_ts.js).
            name="typescript-compile",
            files={"compile_ts.js": _read("compile_ts.js"), "sandbox.d.ts": _read("sandbox.d.ts")},
            command=(NODE, *NODE_FLAGS, "--max-old-space-size=256", "/job/compile_ts.js"),
            address_space_bytes=2 * GIB,
            max_processes=12,
            ro_binds=((str(TYPESCRIPT_DIR), "/opt/typescript"),),
            requires=(NODE, str(TYPESCRIPT_DIR)),
        ),
        Toolchain(
            # solution.go + the dispatch file the Language generates (package main), and the harness
            # (package codementor/harness), compiled and linked by the Go tools directly: no go command,
            # no GOCACHE, the standard library from GOROOT's archives (see languages/go/build.sh).
            name="go",
            files=_go_files(),
            command=("/job/build/prog",),
            address_space_bytes=2 * GIB,
            data_share=True,
            # Threads count: a Go process runs 3-6; the parent, one test's child and what it starts.
            max_processes=24,
            environment=(("GOMAXPROCS", "2"),),
            compile=Compile(
                command=("/bin/sh", "/job/build.sh", str(GO_TOOLS)),
                prepare=("/bin/sh", "/job/build.sh", str(GO_TOOLS), "prepare"),
                source="solution.go",
                error=re.compile(r"^(?:\./)?(?P<file>[\w.-]+\.go):(?P<line>\d+)(?::\d+)?: (?P<message>.*)$", re.M),
                identity=(str(GO_TOOLS / "compile"), str(GO_TOOLS / "link"), str(GOROOT / "bin" / "gofmt")),
                data_bytes=512 * MIB,
                style=StyleCheck("gofmt", str(GOROOT / "bin" / "gofmt"), "diff"),
            ),
            requires=(str(GO_TOOLS / "compile"), str(GO_TOOLS / "link"), str(GO_ARCHIVES / "fmt.a")),
        ),
        Toolchain(
            # solution.cpp, #included by the dispatch file the Language generates, compiled against the
            # harness's precompiled header into /job/build/program, run once per test by the prebuilt parent
            # harness, /job/build/harness (languages/cpp/build.sh, parent.cpp).
            name="cpp",
            files={name: (CPP_DIR / name).read_text() for name in CPP_FILES},
            command=("/job/build/harness",),
            # Native code maps what it uses: RLIMIT_DATA (the run's per-process memory share) bounds the heap;
            # the address space adds the stack and the shared libraries.
            address_space_bytes=512 * MIB,
            data_share=True,
            max_processes=8,  # bwrap, the harness, one test's program and what it starts
            compile=Compile(
                command=("/bin/sh", "/job/build.sh"),
                prepare=("/bin/sh", "/job/build.sh", "prepare"),
                source="solution.cpp",
                error=re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?:\d+:)? (?P<message>(?:fatal )?error: .*)", re.M),
                identity=(GPP, str(CC1PLUS), CLANG_FORMAT),
                style=StyleCheck("clang-format", CLANG_FORMAT, "diff"),
                timeout_seconds=30.0,
                output_bytes=128 * MIB,  # the precompiled header is ~70 MB
                prepare_timeout_seconds=120.0,
            ),
            requires=(GPP, str(CC1PLUS), "/usr/bin/ld.gold"),
        ),
        Toolchain(
            # The Python harness supervises (it holds the job and is non-dumpable); the JVM runs the
            # submission: codementor.Main (java/Main.java) for the calls, Solution.main for each program test.
            # Solution.java is compiled against the JDK alone, the call child's classes once (java/build.sh).
            name="java",
            files={name: _read(f"java/{name}") for name in ("Main.java", "build.sh", "lint_copy.py")},
            command=("--reap-all", "--java", ",".join(JAVA_COMMAND)),
            supervised=True,
            address_space_bytes=768 * MIB,
            # Threads count: the supervisor, the JVM's ~13, a call's thread, and what the submission starts.
            max_processes=32,
            ro_binds=_java_binds(),
            compile=Compile(
                command=("/bin/sh", "/job/build.sh", str(JAVA_HOME / "bin" / "javac")),
                prepare=("/bin/sh", "/job/build.sh", str(JAVA_HOME / "bin" / "javac"), "prepare"),
                source="Solution.java",
                error=re.compile(r"^(?P<file>[\w.-]+\.java):(?P<line>\d+): (?P<message>error: .*)$", re.M),
                identity=(str(JAVA_HOME / "bin" / "javac"), str(JAVA_HOME / "lib" / "modules")),
                address_space_bytes=GIB,
                style=StyleCheck("javac -Xlint", str(JAVA_HOME / "bin" / "javac"), "warnings"),
            ),
            requires=(str(JAVA_HOME / "bin" / "java"), str(JAVA_HOME / "bin" / "javac"), str(JAVA_CONF)),
        ),
    )
}
