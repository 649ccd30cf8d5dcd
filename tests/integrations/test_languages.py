"""Exercises in JavaScript and TypeScript, graded for real: node harness and tsc in bubblewrap, catalog parity.

Every catalog exercise with a part in a language must have a reference solution that passes all its neutral
cases and a starter that does not, run through the real sandbox (one run per solution, all cases in it; for
TypeScript one compile run for all sources first); the neutral cases themselves are checked against the
trusted Python reference. Under CI=true a missing toolchain or bubblewrap fails these tests, never skips.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator

import pytest

from backend.content import neutral
from backend.content.catalog import load_catalog
from backend.integrations.sandbox import RunnerSandbox, RunResult
from backend.integrations.sandbox.languages import LANGUAGES, LanguageGrader, graded
from tests.runners import shared_runner_url

JS = LANGUAGES["javascript"]
TS = LANGUAGES["typescript"]
TIMEOUT = 10.0
TEST_TIMEOUT_MS = 2000


def _require_toolchains() -> None:
    needed = (("bwrap", shutil.which("bwrap")), ("node", JS.available), ("typescript", TS.available))
    missing = [what for what, ok in needed if not ok]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must grade JavaScript, but {missing} is not installed")
        pytest.skip(f"{missing} not installed")


@pytest.fixture(scope="module")
async def runner() -> AsyncIterator[RunnerSandbox]:
    """The session's real runner process (`python -m backend sandbox`), as the API reaches it."""
    _require_toolchains()
    client = RunnerSandbox(shared_runner_url(), timeout_seconds=TIMEOUT, queue_timeout_seconds=300)
    yield client
    await client.close()


@pytest.fixture(scope="module")
def sandbox(runner: RunnerSandbox) -> LanguageGrader:
    return LanguageGrader(runner, timeout_seconds=TIMEOUT, queue_timeout_seconds=300)


CHUNK_CASES = [
    {"name": "pairs", "function": "chunk", "args": "[[1, 2, 3, 4, 5], 2]", "expected": "[[1, 2], [3, 4], [5]]"},
    {"name": "empty", "function": "chunk", "args": "[[], 3]", "expected": "[]"},
    {"name": "objects", "function": "chunk", "args": '[[{"a": null}], 1]', "expected": '[[{"a": null}]]'},
]
CHUNK = """function chunk(items, size) {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  console.log("chunked", items.length);
  return out;
}
"""


async def run_js(sandbox: LanguageGrader, code: str, cases: list[dict], user: str | None = None) -> RunResult:
    # The runner runs one job per user key at a time (fair queueing): parity checks use a key per run.
    return await sandbox.grade(JS, code, cases, test_timeout_ms=TEST_TIMEOUT_MS, user=user)


def job_stdin(cases: list[dict]) -> str:
    return JS.run_stdin(cases, output_cap=65536, test_timeout_ms=TEST_TIMEOUT_MS)


async def test_correct_solution_passes_and_values_compare_on_the_server(sandbox: LanguageGrader) -> None:
    result = await run_js(sandbox, CHUNK, CHUNK_CASES)
    assert result.status == "passed", result.results
    assert result.tests_passed == 3
    assert result.results[0].input == "chunk([1, 2, 3, 4, 5], 2)"
    assert "chunked 5" in result.stdout


async def test_wrong_solution_fails_with_the_failing_test_names(sandbox: LanguageGrader) -> None:
    wrong = CHUNK.replace("i + size", "i + size + 1")
    result = await run_js(sandbox, wrong, CHUNK_CASES)
    assert result.status == "failed"
    assert [outcome.name for outcome in result.results if not outcome.passed] == ["pairs"]
    assert "expected [[1, 2], [3, 4], [5]]" in result.results[0].message


async def test_harness_is_never_told_the_expected_values(sandbox: LanguageGrader) -> None:
    sent = json.loads(job_stdin(CHUNK_CASES))
    assert "expected" not in json.dumps(sent)
    # A submission printing a fake report, or returning a lookalike string, passes nothing.
    forged = 'function chunk() { console.log(\'{"event": "call", "index": 0}\'); return "[[1, 2], [3, 4], [5]]"; }'
    result = await run_js(sandbox, forged, CHUNK_CASES)
    assert result.tests_passed == 0


async def test_syntax_error_reports_its_line(sandbox: LanguageGrader) -> None:
    result = await run_js(sandbox, "function chunk(items, size) {\n  return [;\n}\n", CHUNK_CASES)
    assert result.status == "error"
    assert result.error_line == 2
    assert "SyntaxError" in result.stderr


async def test_thrown_error_is_the_tests_message(sandbox: LanguageGrader) -> None:
    result = await run_js(sandbox, "function chunk() { throw new RangeError('nope'); }", CHUNK_CASES)
    assert result.status == "failed"
    assert result.results[0].message == "RangeError: nope"


async def test_the_called_name_is_found_however_it_is_defined(sandbox: LanguageGrader) -> None:
    """Looked up, given its arguments and called in one timed script: a `const`, an export, or nothing."""
    body = "(items, size) => items.length ? [items.slice(0, size)].concat(chunk(items.slice(size), size)) : []"
    exported = body.replace("chunk(", "module.exports.chunk(")
    for code in (f"const chunk = {body};", f"module.exports.chunk = {exported};"):
        result = await run_js(sandbox, code, CHUNK_CASES)
        assert result.status == "passed", (code, result.results)
    missing = await run_js(sandbox, "const chunked = 1;", CHUNK_CASES)
    assert missing.results[0].message == "ReferenceError: chunk is not defined as a function"


async def test_infinite_loop_times_out(sandbox: LanguageGrader) -> None:
    started = time.perf_counter()
    result = await run_js(sandbox, "function chunk() { for (;;) {} }", CHUNK_CASES)
    assert result.status == "timeout"
    assert result.tests_passed == 0
    assert time.perf_counter() - started < TEST_TIMEOUT_MS / 1000 + 3


CONTAINMENT = {
    "host files are not visible": """const fs = require("fs");
      return fs.existsSync("/etc/passwd") || fs.existsSync("/root");""",
    "the job dir is read-only": """try { require("fs").writeFileSync("/job/x", "1"); return true; }
      catch (e) { return false; }""",
    "no network": """try {
      require("child_process").execFileSync(process.execPath, ["-e",
        "require('net').connect(5432, '127.0.0.1')" +
        ".on('connect', () => process.exit(0)).on('error', () => process.exit(1))"], { timeout: 1500 });
      return true;
    } catch (e) { return false; }""",
    "no environment": "return Object.keys(process.env).filter((k) => !['PATH', 'HOME', 'PWD'].includes(k)).length > 0;",
}


@pytest.mark.parametrize("name", CONTAINMENT)
async def test_containment(sandbox: LanguageGrader, name: str) -> None:
    code = f"function probe() {{ {CONTAINMENT[name]} }}"
    cases = [{"name": name, "function": "probe", "args": "[]", "expected": "false"}]
    result = await run_js(sandbox, code, cases)
    assert result.status == "passed", result.results


async def test_fork_bomb_is_contained(sandbox: LanguageGrader) -> None:
    bomb = """function chunk() {
  const { spawn } = require("child_process");
  for (let i = 0; i < 500; i++) { try { spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"]); } catch (e) {} }
  for (;;) {}
}"""
    result = await run_js(sandbox, bomb, CHUNK_CASES[:1])
    assert result.status in ("timeout", "error")
    # The host is fine: a normal run still passes right after.
    assert (await run_js(sandbox, CHUNK, CHUNK_CASES)).status == "passed"


TS_CHUNK = """function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
"""


async def test_typescript_passes_and_is_compiled_once(sandbox: LanguageGrader) -> None:
    result = await sandbox.grade(TS, TS_CHUNK, CHUNK_CASES)
    assert result.status == "passed", result.results
    # The same source again: no compile run, only the (fast) run of the cached JavaScript.
    started = time.perf_counter()
    again = await sandbox.grade(TS, TS_CHUNK, CHUNK_CASES)
    assert again.status == "passed"
    assert (await sandbox.compile(TS, [TS_CHUNK]))[0].output is not None
    assert time.perf_counter() - started < 3


async def test_typescript_type_error_is_reported_with_its_line(sandbox: LanguageGrader) -> None:
    wrong = TS_CHUNK.replace("const out: T[][] = [];", "const out: T[][] = [];\n  const size2: string = size;")
    result = await sandbox.grade(TS, wrong, CHUNK_CASES)
    assert result.status == "error"
    assert result.error_line == 3
    assert "main.ts:3: error TS2322" in result.stderr
    untyped = await sandbox.grade(TS, "function chunk(items, size) { return []; }", CHUNK_CASES)
    assert untyped.status == "error"
    assert "implicitly has an 'any' type" in untyped.stderr


async def test_typescript_wrong_answer_fails_by_name(sandbox: LanguageGrader) -> None:
    result = await sandbox.grade(TS, TS_CHUNK.replace("i + size)", "i + size + 1)"), CHUNK_CASES)
    assert result.status == "failed"
    assert [outcome.name for outcome in result.results if not outcome.passed] == ["pairs"]


def test_only_installed_languages_are_offered() -> None:
    offered = graded()
    assert next(iter(offered)) == "python"
    assert all(language.version for language in offered.values())
    if JS.available:
        assert offered["javascript"].version.split(".")[0].isdigit()


# --- catalog parity ------------------------------------------------------------------------------


def javascript_specs() -> list:
    return [spec for spec in load_catalog() if "javascript" in spec.variants]


def test_neutral_cases_derive_from_plain_python_calls() -> None:
    tests = [
        {"name": "plain", "call": "f([1, (2, 3)], 'x')", "expected": "(1, None)"},
        {"name": "setup", "setup": "x = 1", "call": "f(x)", "expected": "1"},
        {"name": "expression", "call": "len(f(1))", "expected": "1"},
        {"name": "set", "call": "f({1})", "expected": "1"},
        {"name": "program", "stdin": "1\n", "expected_stdout": "1\n"},
    ]
    derived = neutral.derive_cases(tests)
    assert derived[0] == {"name": "plain", "function": "f", "args": '[[1, [2, 3]], "x"]', "expected": "[1, null]"}
    assert [case["name"] for case in derived] == ["plain", "program"]
    assert neutral.function_name("second_largest", "javascript") == "secondLargest"
    assert neutral.function_name("second_largest", "cpp") == "second_largest"


async def test_catalog_parity_javascript(sandbox: LanguageGrader) -> None:
    """Each JavaScript reference passes its cases and each starter fails them, in the real sandbox."""
    specs = javascript_specs()
    assert {spec.slug for spec in specs} == {spec.slug for spec in load_catalog()}  # every exercise, no exception

    async def check(spec) -> list[str]:
        variant = spec.variants["javascript"]
        reference, starter = await asyncio.gather(
            run_js(sandbox, variant.solution, variant.tests, user=f"reference:{spec.slug}"),
            run_js(sandbox, variant.starter_code, variant.tests, user=f"starter:{spec.slug}"),
        )
        problems = []
        if reference.status != "passed":
            failing = [(o.name, o.message) for o in reference.results if not o.passed]
            problems.append(f"{spec.slug}: reference {reference.status} {failing[:3]}")
        if starter.status == "passed":
            problems.append(f"{spec.slug}: the starter passes")
        return problems

    problems = [problem for found in await asyncio.gather(*map(check, specs)) for problem in found]
    assert not problems, problems


async def test_catalog_parity_typescript(sandbox: LanguageGrader) -> None:
    """Each TypeScript reference type-checks and passes; each starter fails (to compile or its cases).
    All sources compile in one sandbox run."""
    specs = [spec for spec in load_catalog() if "typescript" in spec.variants]
    assert {spec.slug for spec in specs} == {spec.slug for spec in javascript_specs()}
    variants = [spec.variants["typescript"] for spec in specs]
    compiled = await sandbox.compile(TS, [v.solution for v in variants] + [v.starter_code for v in variants])
    references, starters = compiled[: len(variants)], compiled[len(variants) :]
    problems = [f"{spec.slug}: {c.message}" for spec, c in zip(specs, references, strict=True) if c.output is None]
    assert not problems, problems

    async def check(spec, variant, reference, starter) -> list[str]:
        outputs = [reference.output] + ([starter.output] if starter.output is not None else [])
        results = await asyncio.gather(
            *(
                sandbox.run(TS, output, variant.tests, test_timeout_ms=TEST_TIMEOUT_MS, user=f"{spec.slug}:{i}")
                for i, output in enumerate(outputs)
            )
        )
        found = []
        if results[0].status != "passed":
            found.append(f"{spec.slug}: reference {[(o.name, o.message) for o in results[0].results if not o.passed]}")
        if len(results) > 1 and results[1].status == "passed":
            found.append(f"{spec.slug}: the starter passes")
        return found

    checks = map(check, specs, variants, references, starters)
    problems = [problem for found in await asyncio.gather(*checks) for problem in found]
    assert not problems, problems


async def test_neutral_cases_agree_with_the_python_reference(runner: RunnerSandbox) -> None:
    """The cases other languages are graded on are right: the trusted Python solution passes them too."""

    async def check(spec) -> str | None:
        tests = neutral.python_tests(spec.variants["javascript"].tests)
        result = await runner.run(spec.solution, tests, user=f"python:{spec.slug}")
        failing = [(o.name, o.message) for o in result.results if not o.passed]
        return f"{spec.slug}: {failing[:3]}" if result.status != "passed" else None

    problems = [problem for problem in await asyncio.gather(*map(check, javascript_specs())) if problem]
    assert not problems, problems
