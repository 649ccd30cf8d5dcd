"""The sandbox interface, its result types, and grading: turning the harness's reports into a RunResult.

Grading happens here, in the server, never inside the sandbox: the harness is only ever given the code,
each test's `setup`/`call` or `stdin`, and reports what the code returned or printed. Expected values never
enter the sandbox, so nothing the submission writes — to stdout, stderr, an inherited descriptor or even
the result channel itself — can make a wrong answer count as right.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from backend.metrics import SANDBOX_RUNS

# The Python harness is one file in the sandbox, three modules here (lint, size): see harness/child.py.
HARNESS_PARTS = ("child.py", "supervise.py", "main.py")
HARNESS_SOURCE = "\n\n".join((Path(__file__).parent / "harness" / part).read_text() for part in HARNESS_PARTS)
VALUE_TOO_LARGE = "the returned value is too large to compare"  # as the harness says it
OUTPUT_CAP = 10 * 1024  # characters of stdout / stderr kept in a RunResult
CHILD_OUTPUT_CAP = 64 * 1024  # bytes one test's output may reach before the harness stops it
ACTUAL_CAP = 1000  # characters of an actual value or stdout shown with a test outcome
MAX_STYLE_FINDINGS = 50  # of a `style` event (compiled.py writes at most as many)
MAX_DECODE_DEPTH = 70
MAX_DECODE_ITEMS = 200_000
DEFAULT_QUEUE_TIMEOUT_SECONDS = 30.0  # SANDBOX_QUEUE_TIMEOUT_SECONDS
BUILTIN_EXCEPTIONS = frozenset(
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
)
# The kinds of failure (`TestOutcome.failure`): all a hidden test may tell about itself.
TIMED_OUT, DIFFERENT, OUTPUT_LIMIT, NOT_FINISHED, INVALID = (
    "timed out", "different result", "output limit exceeded", "did not finish", "invalid test"
)  # fmt: skip

Status = Literal["passed", "failed", "error", "timeout"]


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False  # not a pytest class, despite the name

    name: str
    passed: bool
    message: str  # short, for a student: "expected 3, got 4", "ZeroDivisionError: division by zero"
    input: str | None  # the test's call or stdin
    expected: str | None  # expected value repr / expected stdout
    actual: str | None  # actual value repr / stdout (capped)
    # The kind of failure, and nothing of the test's data: None when passed, else TIMED_OUT, DIFFERENT,
    # OUTPUT_LIMIT, NOT_FINISHED, INVALID, "raised <builtin exception name>" or "raised an exception".
    failure: str | None = None


@dataclass(frozen=True)
class RunResult:
    status: Status  # error = syntax error / crash at import / harness-level error in the user's code
    tests_passed: int
    tests_total: int
    results: list[TestOutcome]
    # Everything the code printed (capped), hidden tests' output included: never show these to a student
    # when the tests are secret; `output_of` picks what may be shown.
    stdout: str
    stderr: str
    duration_ms: float
    error_line: int | None = None  # the line of a syntax error in the submission
    # What was printed, by test index (None: while the submission was imported, before any test ran;
    # a syntax error's message is there too): (stdout, stderr), each capped.
    output: dict[int | None, tuple[str, str]] = field(default_factory=dict)
    order: tuple[int, ...] = ()  # test indexes in the order the code was given them
    # What the language's formatter would change (`line N: ...`), when the runner checked it (Go: gofmt,
    # compiled.py; Python: pyflakes, analysis.py); None when nothing was checked.
    style: list[str] | None = None
    # Python's static measures from the same `style` event (analysis.style_event), unchecked: see quality_of.
    quality: dict[str, Any] | None = None

    def output_of(self, shown: Collection[int]) -> tuple[str, str]:
        """stdout and stderr printed while importing the submission and by the tests in `shown`."""
        parts = [value for test, value in self.output.items() if test is None or test in shown]
        return cap("".join(out for out, _ in parts), OUTPUT_CAP), cap("".join(err for _, err in parts), OUTPUT_CAP)


class SandboxUnavailable(Exception):
    """The sandbox itself failed (bwrap broken, Piston down): not the submission's fault."""


class SandboxBusy(SandboxUnavailable):
    """Every slot stayed busy for the whole queue timeout: the run never started."""


@contextlib.asynccontextmanager
async def slot(semaphore: asyncio.Semaphore, queue_timeout_seconds: float) -> AsyncIterator[None]:
    """Hold one of the sandbox's slots; waiting longer than `queue_timeout_seconds` raises SandboxBusy.

    A burst queues briefly, but a saturated sandbox answers quickly instead of stacking up requests
    (and their connections) that would all time out at the load balancer anyway."""
    try:
        async with asyncio.timeout(queue_timeout_seconds):
            await semaphore.acquire()
    except TimeoutError:
        raise SandboxBusy(f"no sandbox slot became free within {queue_timeout_seconds:g} s") from None
    try:
        yield
    finally:
        semaphore.release()


class Sandbox(ABC):
    backend: str

    @abstractmethod
    async def run(
        self, code: str, tests: list[dict], *, timeout_seconds: float | None = None, user: str | None = None
    ) -> RunResult:
        """Run `code` against `tests` (docs/API.md, "Exercise tests") and grade it; raises SandboxUnavailable.

        `user` is an opaque key for fair queueing: one running job per key, slots round-robin across keys."""

    async def isolation(self) -> str:
        """`isolated`, `unisolated` or `unavailable` (readiness)."""
        return "isolated"

    async def close(self) -> None:
        return None


def build_job(code: str, tests: list[dict]) -> str:
    """What the harness reads on stdin: the code and each test's inputs, never its expectation."""
    inputs: list[dict[str, str]] = []
    for test in tests:
        if "call" in test:
            inputs.append({"setup": str(test.get("setup") or ""), "call": str(test["call"])})
        else:
            inputs.append({"stdin": str(test.get("stdin") or "")})
    return json.dumps({"code": code, "tests": inputs, "output_cap": CHILD_OUTPUT_CAP})


@dataclass
class Report:
    """The harness's events, parsed; tolerant of garbage, since the sandbox's output is untrusted."""

    events: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # by (kind, test index)
    syntax_error: dict[str, Any] | None = None
    import_error: str | None = None
    stdout: str = ""
    stderr: str = ""
    output: dict[int | None, tuple[str, str]] = field(default_factory=dict)  # RunResult.output
    order: list[int] = field(default_factory=list)
    style: list[str] | None = None  # RunResult.style: the first `style` event (the runner writes it first)
    quality: dict[str, Any] | None = None  # RunResult.quality: that event's static measures (Python)
    is_started: bool = False
    is_done: bool = False

    @classmethod
    def parse(cls, lines: list[bytes]) -> Report:
        report = cls()
        for line in lines:
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if not isinstance(event, dict):
                continue
            kind = event.get("event")
            if kind in ("call", "program") and isinstance(event.get("index"), int):
                report.events.setdefault((kind, event["index"]), event)
            elif kind == "syntax_error":
                report.syntax_error = event
            elif kind == "import_error":
                report.import_error = str(event.get("message") or "the code crashed on import")
            elif kind == "output":
                report.add_output(event)
            elif kind == "begin" and type(event.get("index")) is int and event["index"] not in report.order:
                report.order.append(event["index"])
            elif kind == "style" and report.style is None and isinstance(event.get("findings"), list):
                report.style = [str(finding)[:300] for finding in event["findings"][:MAX_STYLE_FINDINGS]]
                report.quality = event["quality"] if isinstance(event.get("quality"), dict) else None
            elif kind == "started":
                report.is_started = True
            elif kind == "done":
                report.is_done = True
        return report

    def add_output(self, event: dict[str, Any]) -> None:
        stdout, stderr = str(event.get("stdout") or ""), str(event.get("stderr") or "")
        self.stdout, self.stderr = cap(self.stdout + stdout, OUTPUT_CAP), cap(self.stderr + stderr, OUTPUT_CAP)
        test = event.get("test", -1)  # output not attributed to a test (or the import) is never shown
        if test is not None and type(test) is not int:
            test = -1
        before_out, before_err = self.output.get(test, ("", ""))
        self.output[test] = (cap(before_out + stdout, OUTPUT_CAP), cap(before_err + stderr, OUTPUT_CAP))


def grade(
    tests: list[dict], report: Report, *, duration_ms: float, is_timeout: bool, crash: str | None = None
) -> RunResult:
    """Compare what the harness reported with each test's expectation.

    `crash` describes a harness that ended without finishing (killed by the user's code, out of memory):
    the run is an error, never a pass."""
    stdout, stderr = report.stdout, report.stderr
    if report.syntax_error is not None:
        line = report.syntax_error.get("line")
        message = cap(str(report.syntax_error.get("message") or "SyntaxError"), OUTPUT_CAP)
        outcomes = [not_run(test, index, message, NOT_FINISHED) for index, test in enumerate(tests)]
        return RunResult(
            "error", 0, len(tests), outcomes, stdout, message, duration_ms,
            error_line=line if isinstance(line, int) else None, output={None: ("", message)},
            style=report.style, quality=report.quality,
        )  # fmt: skip
    outcomes = []
    for index, test in enumerate(tests):
        # Keyed by kind too: an event of the wrong kind for a test (forged or not) is never read.
        event = report.events.get(("call" if "call" in test else "program", index))
        if event is None:
            reason = (
                report.import_error if report.import_error and "call" in test
                else TIMED_OUT if is_timeout
                else crash or "no result: the program exited before this test finished"
            )  # fmt: skip
            outcomes.append(not_run(test, index, reason, TIMED_OUT if reason == TIMED_OUT else NOT_FINISHED))
        elif "call" in test:
            outcomes.append(grade_call(test, index, event))
        else:
            outcomes.append(grade_program(test, index, event))
    passed = sum(outcome.passed for outcome in outcomes)
    status: Status
    if is_timeout:
        status = "timeout"
    elif report.import_error is not None or crash is not None or not report.is_done:
        status = "error"
    else:
        status = "passed" if passed == len(tests) else "failed"
    return RunResult(
        status, passed, len(tests), outcomes, stdout, stderr, duration_ms, output=report.output,
        order=tuple(report.order), style=report.style, quality=report.quality,
    )  # fmt: skip


def record(backend: str, result: RunResult) -> RunResult:
    SANDBOX_RUNS.labels(backend=backend, status=result.status).inc()
    return result


def test_name(test: dict, index: int) -> str:
    return str(test.get("name") or f"test {index + 1}")


def test_input(test: dict) -> str | None:
    if "call" in test:
        setup = str(test.get("setup") or "")
        return f"{setup}\n{test['call']}".strip() if setup else str(test["call"])
    return str(test.get("stdin") or "")


def test_expected(test: dict) -> str | None:
    return str(test["expected"]) if "call" in test else str(test.get("expected_stdout", ""))


def not_run(test: dict, index: int, message: str, failure: str) -> TestOutcome:
    return TestOutcome(test_name(test, index), False, message, test_input(test), test_expected(test), None, failure)


def raised(name: Any) -> str:
    """The failure kind of an exception: named only when it is a builtin one (a class of the submission's
    own could carry a hidden test's arguments in its name)."""
    return f"raised {name}" if name in BUILTIN_EXCEPTIONS else "raised an exception"


def grade_call(test: dict, index: int, event: dict[str, Any]) -> TestOutcome:
    name, call_input, expected_text = test_name(test, index), test_input(test), test_expected(test)
    if event.get("error"):
        error = str(event["error"])
        failure = OUTPUT_LIMIT if error == OUTPUT_LIMIT else raised(event.get("exception"))
        if error == VALUE_TOO_LARGE and not event.get("exception"):
            failure = DIFFERENT
        return TestOutcome(name, False, cap(error, 300), call_input, expected_text, None, failure)
    try:
        expected = ast.literal_eval(str(test["expected"]))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        message = "invalid test: expected is not a Python literal"
        return TestOutcome(name, False, message, call_input, expected_text, None, INVALID)
    try:
        actual = decode(event.get("value"))
    except Unsupported as unsupported:
        shown = cap(str(unsupported), ACTUAL_CAP)
        message = f"expected {expected!r}, got {shown}"
        return TestOutcome(name, False, message, call_input, expected_text, shown, DIFFERENT)
    try:
        is_equal = bool(actual == expected)
        shown = cap(repr(actual), ACTUAL_CAP)
    except (RecursionError, ValueError):
        is_equal, shown = False, "a value too large to compare"
    message = "ok" if is_equal else f"expected {cap(repr(expected), 200)}, got {cap(shown, 200)}"
    return TestOutcome(name, is_equal, message, call_input, expected_text, shown, None if is_equal else DIFFERENT)


def grade_program(test: dict, index: int, event: dict[str, Any]) -> TestOutcome:
    name, stdin, expected = test_name(test, index), test_input(test), test_expected(test)
    stdout = str(event.get("stdout") or "")
    actual = cap(stdout, ACTUAL_CAP)
    if event.get("truncated"):
        return TestOutcome(name, False, OUTPUT_LIMIT, stdin, expected, actual, OUTPUT_LIMIT)
    want, got = normalize_output(expected or ""), normalize_output(stdout)
    if want == got:
        return TestOutcome(name, True, "ok", stdin, expected, actual)
    if event.get("error"):
        error = str(event["error"])  # the traceback's last line: "ZeroDivisionError: ..."
        return TestOutcome(name, False, cap(error, 300), stdin, expected, actual, raised(error.split(":", 1)[0]))
    return TestOutcome(name, False, first_difference(want, got), stdin, expected, actual, DIFFERENT)


def normalize_output(text: str) -> list[str]:
    """Trailing whitespace ignored: each line right-stripped, trailing empty lines dropped."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def first_difference(want: list[str], got: list[str]) -> str:
    for number, (expected_line, actual_line) in enumerate(zip(want, got, strict=False), start=1):
        if expected_line != actual_line:
            return f"line {number}: expected {cap(expected_line, 80)!r}, got {cap(actual_line, 80)!r}"
    if len(got) < len(want):
        return f"expected {len(want)} lines of output, got {len(got)}"
    return f"expected {len(want)} lines of output, got {len(got)} (extra: {cap(got[len(want)], 80)!r})"


class Unsupported(Exception):
    """A value the harness could not express as a builtin literal (a custom object, too deep, too big)."""


def decode(tree: Any) -> Any:
    """The value an encoded tree from the harness stands for; untrusted input, so bounded and strict."""
    budget = [MAX_DECODE_ITEMS]

    def walk(node: Any, depth: int) -> Any:
        budget[0] -= 1
        if depth > MAX_DECODE_DEPTH or budget[0] < 0:
            raise Unsupported("a value too large to compare")
        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            raise Unsupported("an unreadable value")
        tag, args = node[0], node[1:]
        try:
            if tag == "none":
                return None
            if tag == "bool":
                return bool(args[0])
            if tag == "int":
                return int(str(args[0]))
            if tag == "float":
                return float(str(args[0]))
            if tag == "complex":
                return complex(float(str(args[0])), float(str(args[1])))
            if tag == "str":
                return str(args[0])
            if tag == "bytes":
                return bytes.fromhex(str(args[0]))
            if tag in ("list", "tuple", "set", "frozenset"):
                items = [walk(item, depth + 1) for item in args[0]]
                return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
            if tag == "dict":
                return {walk(key, depth + 1): walk(value, depth + 1) for key, value in args[0]}
            if tag == "other":
                raise Unsupported(str(args[0]))
        except (IndexError, TypeError, ValueError) as error:
            raise Unsupported("an unreadable value") from error
        raise Unsupported("an unreadable value")

    return walk(tree, 0)


def cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def elapsed_ms(started: float, now: float) -> float:
    return round((now - started) * 1000, 1)
