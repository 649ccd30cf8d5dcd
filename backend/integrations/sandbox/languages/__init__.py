"""Exercises in languages other than Python: toolchains, per-language jobs, and grading of neutral cases.

A language is *graded* on this host when its toolchain is installed (detected once, at first use) and a
harness exists for it; anything else is unavailable and never offered. Each language turns a submission
and an exercise's neutral cases (`backend.content.neutral`) into a `LanguageJob`: the files of the job dir
(the submission and the language's harness), the command run inside the sandbox, what goes in on stdin
(the cases' arguments only, never their expectations), and the limits the toolchain needs. The harness
reports in the Python harness's event format, so `base.grade` compares values on the server unchanged.

Measured under bubblewrap on this 2-core host (uid 60000, RLIMIT_NPROC 32): node starts in ~40 ms; g++
compiles a `<bits/stdc++.h>` program in ~1.4 s; javac ~0.5-1.1 s (needs /etc/java-17-openjdk for
java.security), java runs in ~0.2 s with a small heap; `go build` ~0.2-0.5 s (needs a writable GOCACHE);
a TypeScript type check through the compiler API ~0.9-1.8 s. Node, Java and Go reserve far more address
space than they use: each needs RLIMIT_AS of 1 GiB (tsc 2 GiB) and bounds its heap with its own flags.
"""

from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from backend.content import neutral

HERE = Path(__file__).parent
NODE = "/usr/bin/node"
GIB = 1024 * 1024 * 1024
# One V8 worker thread and no GC threads: node then starts 4 threads instead of ~10, and threads count
# against the slot uid's RLIMIT_NPROC (the harness and one program child fit in 8). 128 MiB of heap.
NODE_FLAGS = ("--v8-pool-size=1", "--single-threaded-gc", "--max-old-space-size=128", "--stack-size=2000")


@dataclass(frozen=True)
class LanguageJob:
    """What the sandbox runs for one submission in one language."""

    language: str
    files: dict[str, str]  # name in the job dir → content
    command: list[str]  # run with the job dir (read-only) as the working directory
    stdin: bytes  # the job: the cases' inputs, never their expectations
    address_space_bytes: int
    env: dict[str, str] = field(default_factory=dict)
    ro_binds: tuple[tuple[str, str], ...] = ()  # (host path, sandbox path) the toolchain needs, read-only


@dataclass(frozen=True)
class Language:
    name: str
    title: str
    source_file: str

    @functools.cached_property
    def version(self) -> str | None:
        """The toolchain's version, or None when it is not installed (the language is then unavailable)."""
        return None

    @property
    def available(self) -> bool:
        return self.version is not None

    @property
    def compiled(self) -> bool:
        """Whether submissions go through a compile step first (its output is cached by source hash)."""
        return False

    def build_compile_job(self, sources: dict[str, str]) -> LanguageJob:
        """One sandbox run compiling every source (by key); reports `compiled`/`compile_error` events."""
        raise NotImplementedError

    def build_job(self, code: str, cases: list[dict], *, output_cap: int, test_timeout_ms: int) -> LanguageJob:
        """The run: `code` is the submission, or for a compiled language what its compile step produced."""
        raise NotImplementedError


@dataclass(frozen=True)
class JavaScript(Language):
    name: str = "javascript"
    title: str = "JavaScript"
    source_file: str = "main.js"

    @functools.cached_property
    def version(self) -> str | None:
        return tool_version([NODE, "--version"], prefix="v")

    def build_job(self, code: str, cases: list[dict], *, output_cap: int, test_timeout_ms: int) -> LanguageJob:
        job = {
            "tests": [job_input(case, self.name) for case in cases],
            "output_cap": output_cap,
            "test_timeout_ms": test_timeout_ms,
        }
        return LanguageJob(
            language=self.name,
            files={"harness.js": JS_HARNESS, "main.js": code},
            command=[NODE, *NODE_FLAGS, "harness.js"],
            stdin=json.dumps(job).encode("utf-8", "surrogatepass"),
            address_space_bytes=GIB,
        )


@dataclass(frozen=True)
class TypeScript(JavaScript):
    """Type-checked strictly (ES2022, no implicit any) by the pinned compiler in a sandbox run of its own,
    which reports the emitted JavaScript (or the first errors, with their lines, like a syntax error); the
    JavaScript harness then runs that. No submission code runs during compilation, so what the compile run
    reports can be cached by source hash and reused for the same source."""

    name: str = "typescript"
    title: str = "TypeScript"
    source_file: str = "main.ts"

    @functools.cached_property
    def version(self) -> str | None:
        if JavaScript().version is None:
            return None
        try:
            return str(json.loads((TYPESCRIPT_DIR / "package.json").read_text())["version"])
        except (OSError, ValueError, KeyError):
            return None

    @property
    def compiled(self) -> bool:
        return True

    def build_compile_job(self, sources: dict[str, str]) -> LanguageJob:
        return LanguageJob(
            language=self.name,
            files={"compile_ts.js": TS_COMPILER, "sandbox.d.ts": TS_GLOBALS},
            # The compiler needs a bigger heap than a submission: 256 MiB, and 2 GiB of address space.
            command=[NODE, *NODE_FLAGS, "--max-old-space-size=256", "compile_ts.js"],
            stdin=json.dumps({"sources": sources}).encode("utf-8", "surrogatepass"),
            address_space_bytes=2 * GIB,
            ro_binds=((str(TYPESCRIPT_DIR), "/opt/typescript"),),
        )


def job_input(case: dict, language: str) -> dict:
    """What a harness is told about one case: its inputs, with method names in the language's convention."""
    if "stdin" in case:
        return {"stdin": case["stdin"]}
    if "args" in case:
        return {"function": neutral.function_name(case["function"], language), "args": json.loads(case["args"])}
    ops = json.loads(case["ops"])
    return {"ops": [ops[0], *([neutral.function_name(name, language), args] for name, args in ops[1:])]}


def graded_tests(cases: list[dict], language: str) -> list[dict]:
    """The neutral cases in the shape `base.grade` compares: a call's input shown in the language's
    syntax, its expectation as the equal Python literal."""
    tests = []
    for case in cases:
        if "stdin" in case:
            tests.append(dict(case))
            continue
        display = neutral.display_call(case, language)
        tests.append({"name": case["name"], "call": display, "expected": neutral.python_literal(case["expected"])})
    return tests


def tool_version(command: list[str], *, prefix: str = "") -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)  # noqa: S603
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0].removeprefix(prefix).strip() if text else None


JS_HARNESS = (HERE / "harness.js").read_text()
TS_COMPILER = (HERE / "compile_ts.js").read_text()
TS_GLOBALS = (HERE / "sandbox.d.ts").read_text()
# The pinned compiler, installed with `npm ci` in languages/typescript (by .ci/run and the Dockerfile).
TYPESCRIPT_DIR = HERE / "typescript" / "node_modules" / "typescript"
LANGUAGES: dict[str, Language] = {language.name: language for language in (JavaScript(), TypeScript())}


def available() -> dict[str, Language]:
    """The languages besides Python whose toolchain is installed here."""
    return {name: language for name, language in LANGUAGES.items() if language.available}
