"""Exercises in languages other than Python: per-language runner jobs, compile cache, grading of neutral cases.

A language is *graded* on this host when its toolchain is installed (detected once, at first use) and the
sandbox runner knows its toolchain (`toolchains.py`); anything else is unavailable and never offered. Each
language turns a submission and an exercise's neutral cases (`backend.content.neutral`) into runner jobs
(`protocol.Job`: a toolchain name, files, stdin, limits): the cases' arguments go in, never their
expectations. The harnesses report in the Python harness's event format, so `protocol.grade_execution`
compares values in the API exactly as for Python.

Compiled languages (Go; Java and C++ the same way) are compiled by the runner in the run's own job: the
Language's `files` are the submission and what it generates for the cases (Go's dispatch.go), and the
runner compiles them unless its artifact cache holds the same files (sandbox/compiled.py); a compile error
comes back as a `syntax_error` event, graded like Python's. TypeScript, older, compiles in a runner job of
its own whose output (the emitted JavaScript, or the first errors with their lines) is cached here in
`LanguageGrader` by source hash and toolchain version; no submission code runs in a compile, so what it
reports is the compiler's word. Each language's class is in language.py (the base) or its own module.

Measured under bubblewrap on this 2-core host (others' load included): a JavaScript run ~0.1-0.3 s; a
TypeScript compile 1-1.5 s for one source (the compiler's own start ~0.4 s), ~0.05-0.1 s per extra source
in the same job; javac ~0.5-1.1 s (needs /etc/java-17-openjdk), g++ ~1.4 s for a `<bits/stdc++.h>`
program (needs PATH for `ld`); Go's compile and link ~0.5 s (docs/LANGUAGES.md).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Protocol

from backend.content import neutral
from backend.integrations.sandbox.base import CHILD_OUTPUT_CAP, Report, RunResult, SandboxUnavailable, grade, record
from backend.integrations.sandbox.languages.cpp import CPP
from backend.integrations.sandbox.languages.go import GO
from backend.integrations.sandbox.languages.java import JAVA
from backend.integrations.sandbox.languages.language import Language, tool_version
from backend.integrations.sandbox.languages.toolchains import NODE, TOOLCHAINS, TYPESCRIPT_DIR
from backend.integrations.sandbox.protocol import Execution, Job, grade_execution

DEFAULT_TEST_TIMEOUT_MS = 5000  # one call or program; the whole run is bounded by the sandbox timeout
COMPILE_CACHE_ENTRIES = 1024


class Executor(Protocol):
    """What runs a runner job: the API's `RunnerSandbox` (or a runner's `LocalSandbox` in its own tests)."""

    async def execute(self, job: Job) -> Execution: ...


@dataclass(frozen=True)
class Node(Language):
    @functools.cached_property
    def version(self) -> str | None:
        node = tool_version([NODE, "--version"], prefix="v")
        if node is None or self.compile_toolchain is None:
            return node
        try:
            return str(json.loads((TYPESCRIPT_DIR / "package.json").read_text())["version"])
        except (OSError, ValueError, KeyError):
            return None


PYTHON_LANGUAGE = Language("python", "Python", None)
LANGUAGES: dict[str, Language] = {
    language.name: language
    for language in (
        PYTHON_LANGUAGE,
        Node("javascript", "JavaScript", "javascript"),
        # Type-checked strictly (ES2022, no implicit any) in a compile job, then run by the JavaScript harness.
        Node("typescript", "TypeScript", "javascript", compile_toolchain="typescript-compile"),
        CPP,  # compiled by the runner in the run's own job (compiled.py)
        JAVA,  # compiled by the runner in the run's own job (compiled.py)
        GO,  # compiled by the runner in the run's own job (compiled.py)
    )
}


def graded() -> dict[str, Language]:
    """The languages whose toolchain is installed here, Python first."""
    return {name: language for name, language in LANGUAGES.items() if language.available}


@dataclass(frozen=True)
class Compiled:
    output: str | None  # what the compile step made (for TypeScript, JavaScript); None on an error
    line: int | None  # the first error's line in the submission
    message: str | None
    style: list[str] | None = None  # the compiler's unused-code findings (`line N: ...`), RunResult.style


class LanguageGrader:
    """Grades submissions in languages other than Python through runner jobs, with a compile cache."""

    def __init__(self, executor: Executor, *, timeout_seconds: float, queue_timeout_seconds: float) -> None:
        self.executor = executor
        self.timeout_seconds = timeout_seconds
        self.queue_timeout_seconds = queue_timeout_seconds
        self._compiled: OrderedDict[str, Compiled] = OrderedDict()  # least recently used first

    async def grade(
        self,
        language: Language,
        code: str,
        cases: list[dict],
        *,
        user: str | None = None,
        test_timeout_ms: int = DEFAULT_TEST_TIMEOUT_MS,
        timeout_seconds: float | None = None,
    ) -> RunResult:
        """Run `code` against neutral cases and grade it (compiling first, through the cache)."""
        if language.toolchain is None:
            raise ValueError("Python is graded by the sandbox's own harness (Sandbox.run)")
        tests = graded_tests(cases, language.name)
        compiled = None
        if language.compiled:
            compiled = (await self.compile(language, [code], user=user))[0]
            if compiled.output is None:
                report = Report(syntax_error={"line": compiled.line, "message": compiled.message})
                return record("local", grade(tests, report, duration_ms=0.0, is_timeout=False))
            code = compiled.output
        result = await self.run(
            language, code, cases, user=user, test_timeout_ms=test_timeout_ms, timeout_seconds=timeout_seconds
        )
        # A language compiled here takes its style from the compile job, never from the run's own events.
        return result if compiled is None else replace(result, style=compiled.style)

    async def run(
        self,
        language: Language,
        code: str,
        cases: list[dict],
        *,
        user: str | None = None,
        test_timeout_ms: int = DEFAULT_TEST_TIMEOUT_MS,
        timeout_seconds: float | None = None,
    ) -> RunResult:
        """Run code that the API need not compile first: JavaScript, what a TypeScript compile job emitted, or
        a language the runner compiles in the same job (Go)."""
        assert language.toolchain is not None
        stdin = language.run_stdin(cases, output_cap=CHILD_OUTPUT_CAP, test_timeout_ms=test_timeout_ms)
        job = self._job(language.toolchain, language.files(code, cases), stdin, user, timeout_seconds)
        execution = await self.executor.execute(job)
        report = Report.parse(execution.report.encode("utf-8", "surrogateescape").split(b"\n"))
        # A call or program over the harness's per-test limit makes the run a timeout, as for Python.
        if any(event.get("error") == "timed out" for event in report.events.values()):
            execution = Execution(**{**execution.to_json(), "timed_out": True})
        return record("local", grade_execution(graded_tests(cases, language.name), execution))

    async def compile(self, language: Language, sources: list[str], *, user: str | None = None) -> list[Compiled]:
        """What `language`'s compile step makes of each source: from the cache, else every missing one in a
        single compile job."""
        assert language.compile_toolchain is not None
        keys = [compile_key(language, source) for source in sources]
        missing = {key: source for key, source in zip(keys, sources, strict=True) if key not in self._compiled}
        if missing:
            stdin = json.dumps({"sources": missing})
            job = self._job(language.compile_toolchain, {}, stdin, user, self.timeout_seconds * 3)
            execution = await self.executor.execute(job)
            found = parse_compiled(execution.report, set(missing))
            if set(found) != set(missing):
                if len(missing) == 1 and compiler_started(execution.report):
                    # It started and died on the one source it was given (its heap or stack, or its time, gone
                    # on a type that recurses without end): that source's compile error, not an unavailable
                    # sandbox. Not cached: the same source may compile on a less loaded machine.
                    [key] = missing
                    why = "in time" if execution.timed_out else "within its memory"
                    message = f"the {language.name} compiler could not finish this program {why}"
                    return [Compiled(None, None, message) if item == key else self._compiled[item] for item in keys]
                raise SandboxUnavailable(
                    f"the {language.name} compiler did not finish ({execution.diagnostics[:200] or 'no diagnostics'})"
                )
            self._compiled.update(found)
        for key in keys:
            self._compiled.move_to_end(key)
        result = [self._compiled[key] for key in keys]
        while len(self._compiled) > COMPILE_CACHE_ENTRIES:
            self._compiled.popitem(last=False)
        return result

    def _job(self, toolchain: str, files: dict[str, str], stdin: str, user: str | None, timeout: float | None) -> Job:
        return Job(
            toolchain=toolchain,
            files=files,
            stdin=stdin,
            timeout_seconds=timeout or self.timeout_seconds,
            queue_timeout_seconds=self.queue_timeout_seconds,
            user=user or "anonymous",
        )


_graders: weakref.WeakKeyDictionary[Any, LanguageGrader] = weakref.WeakKeyDictionary()


def grader_for(sandbox: Any) -> LanguageGrader | None:
    """The grader (and compile cache) that sends `sandbox`'s runner jobs; None for a sandbox that runs
    Python only (Piston)."""
    if not callable(getattr(sandbox, "execute", None)):
        return None
    grader = _graders.get(sandbox)
    if grader is None:
        grader = _graders[sandbox] = LanguageGrader(
            sandbox, timeout_seconds=sandbox.timeout_seconds, queue_timeout_seconds=sandbox.queue_timeout_seconds
        )
    return grader


def offered(sandbox: Any) -> dict[str, Language]:
    """The languages students may pick here: Python, and every other one with its toolchain installed
    when `sandbox` can run runner jobs."""
    languages = graded()
    return languages if grader_for(sandbox) is not None else {"python": languages.get("python", PYTHON_LANGUAGE)}


async def grade_in(sandbox: Any, language: str, code: str, cases: list[dict], *, user: str | None) -> RunResult:
    """Grade `code` in `language` (not Python) through `sandbox`'s runner; unavailable languages raise
    SandboxUnavailable (never a 500)."""
    found = LANGUAGES.get(language)
    grader = grader_for(sandbox)
    if found is None or found.toolchain is None or not found.available or grader is None:
        raise SandboxUnavailable(f"{language} cannot be graded on this server")
    return await grader.grade(found, code, cases, user=user)


def parse_compiled(report: str, keys: set[str]) -> dict[str, Compiled]:
    found: dict[str, Compiled] = {}
    for line in report.splitlines():
        try:
            event: Any = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("key") not in keys or event["key"] in found:
            continue
        if event.get("event") == "compiled":
            style = event.get("style")
            findings = [str(item)[:300] for item in style[:50]] if isinstance(style, list) else None
            found[event["key"]] = Compiled(str(event.get("output") or ""), None, None, findings)
        elif event.get("event") == "compile_error":
            line_number = event.get("line")
            found[event["key"]] = Compiled(
                None, line_number if isinstance(line_number, int) else None, str(event.get("message") or "")
            )
    return found


def compiler_started(report: str) -> bool:
    """Whether a compile job's compiler read its job (its `started` event)."""
    for line in report.splitlines():
        with contextlib.suppress(ValueError):
            if json.loads(line) == {"event": "started"}:
                return True
    return False


def compile_key(language: Language, source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{language.name}:{language.version}:{digest}"


def graded_tests(cases: list[dict], language: str) -> list[dict]:
    """The neutral cases in the shape `base.grade` compares: a call's input shown in the language's
    syntax, its expectation as the equal Python literal."""
    tests = []
    for case in cases:
        if "stdin" in case:
            tests.append({key: case[key] for key in ("name", "stdin", "expected_stdout")})
            continue
        display = neutral.display_call(case, language)
        tests.append({"name": case["name"], "call": display, "expected": neutral.python_literal(case["expected"])})
    return tests


__all__ = [
    "LANGUAGES",
    "TOOLCHAINS",
    "Compiled",
    "Language",
    "LanguageGrader",
    "grade_in",
    "graded",
    "graded_tests",
    "offered",
]
