"""Exercises in Go, graded for real: compiled by the runner in bubblewrap, each test in a child process.

Through the session's real runner process (`python -m backend sandbox`), as the API reaches it: a correct
solution passes, a wrong one fails by name, a compile error has its line, an endless loop times out, what
the sandbox contains stays contained, no test's process can find another test's inputs, and every catalog
exercise's Go reference passes while its starter does not. Under CI=true a missing toolchain or bubblewrap
fails these tests, never skips.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from quart import Quart
from quart.testing import QuartClient

from backend.content.catalog import load_catalog
from backend.integrations.sandbox import RunnerSandbox, RunResult
from backend.integrations.sandbox.languages import LANGUAGES, LanguageGrader, graded
from backend.integrations.sandbox.languages.toolchains import GO_DIR, GOROOT
from tests.api.test_chat import llm_settings
from tests.api.test_exercises import EXERCISES, add_exercise, sign_in, submit
from tests.conftest import AppFactory
from tests.fakes.llm_servers import FakeOpenAI
from tests.runners import shared_runner_url

GO = LANGUAGES["go"]
TEST_TIMEOUT_MS = 2000


@pytest.fixture(scope="module")
async def runner() -> AsyncIterator[RunnerSandbox]:
    missing = [what for what, ok in (("bwrap", shutil.which("bwrap")), ("go", GO.available)) if not ok]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must grade Go, but {missing} is not installed")
        pytest.skip(f"{missing} not installed")
    client = RunnerSandbox(shared_runner_url(), timeout_seconds=10, queue_timeout_seconds=300)
    yield client
    await client.close()


@pytest.fixture(scope="module")
def sandbox(runner: RunnerSandbox) -> LanguageGrader:
    return LanguageGrader(runner, timeout_seconds=10, queue_timeout_seconds=300)


async def run_go(sandbox: LanguageGrader, code: str, cases: list[dict], user: str | None = None) -> RunResult:
    return await sandbox.grade(GO, code, cases, test_timeout_ms=TEST_TIMEOUT_MS, user=user)


CHUNK_CASES = [
    {"name": "pairs", "function": "chunk", "args": "[[1, 2, 3, 4, 5], 2]", "expected": "[[1, 2], [3, 4], [5]]"},
    {"name": "empty", "function": "chunk", "args": "[[], 3]", "expected": "[]"},
    {"name": "objects", "function": "chunk", "args": '[[{"a": null}], 1]', "expected": '[[{"a": null}]]'},
    {"name": "letters", "function": "chunk", "args": '["abc", 2]', "expected": '[["a", "b"], ["c"]]'},
]
CHUNK = """package main

import "fmt"

func chunk(items []any, size int) [][]any {
	var out [][]any
	for i := 0; i < len(items); i += size {
		end := i + size
		if end > len(items) {
			end = len(items)
		}
		out = append(out, items[i:end])
	}
	fmt.Println("chunked", len(items))
	return out
}
"""


async def test_correct_solution_passes_and_each_test_has_its_own_output(sandbox: LanguageGrader) -> None:
    result = await run_go(sandbox, CHUNK, CHUNK_CASES)
    assert result.status == "passed", result.results
    assert result.tests_passed == 4
    assert result.results[0].input == "chunk([1, 2, 3, 4, 5], 2)"
    assert result.output[0] == ("chunked 5\n", "") and result.output[1] == ("chunked 0\n", "")
    assert result.order == (0, 1, 2, 3)


async def test_wrong_solution_fails_with_the_failing_test_names(sandbox: LanguageGrader) -> None:
    result = await run_go(sandbox, CHUNK.replace("end := i + size", "end := i + size + 1"), CHUNK_CASES)
    assert result.status == "failed"
    assert [outcome.name for outcome in result.results if not outcome.passed] == ["pairs", "letters"]
    assert "expected [[1, 2], [3, 4], [5]]" in result.results[0].message


async def test_compile_error_reports_its_line(sandbox: LanguageGrader) -> None:
    result = await run_go(sandbox, CHUNK.replace("var out [][]any", "var out [][]any = 1"), CHUNK_CASES)
    assert result.status == "error"
    assert result.error_line == 6
    assert result.stderr.startswith("solution.go:6: cannot use 1")
    unused = await run_go(sandbox, CHUNK.replace('import "fmt"', 'import (\n\t"fmt"\n\t"os"\n)'), CHUNK_CASES)
    assert unused.status == "error" and unused.error_line == 5 and 'imported and not used: "os"' in unused.stderr


GO_VALUES = """package main

import (
	"errors"
	"fmt"
)

type Point struct {
	X    int `json:"x"`
	Y    int
	note string
}

func divide(a, b int) (int, error) {
	if b == 0 {
		return 0, errors.New("division by zero")
	}
	return a / b, nil
}

func lookup(m map[string]int, key string) (int, bool) {
	v, ok := m[key]
	return v, ok
}

func point(x int) *Point    { return &Point{x, x * 2, "hidden"} }
func nothing() []int        { return nil }
func index(xs []int) int    { return xs[5] }
func pair() (string, float64) { return "half", 0.5 }
func letters(r []rune) int  { return len(r) }
func noisy() int {
	fmt.Println("to stdout")
	panic(fmt.Sprintf("custom %d", 7))
}

type Counter struct{ n int }

func newCounter(start int) (*Counter, error) {
	if start < 0 {
		return nil, errors.New("negative start")
	}
	return &Counter{start}, nil
}
func (c *Counter) Add(by ...int) {
	for _, b := range by {
		c.n += b
	}
}
func (c *Counter) Value() int { return c.n }
"""


async def test_go_values_errors_panics_and_operations(sandbox: LanguageGrader) -> None:
    cases = [
        {"name": "error", "function": "divide", "args": "[1, 0]", "expected": "0"},
        {"name": "no error", "function": "divide", "args": "[7, 2]", "expected": "3"},
        {"name": "comma ok", "function": "lookup", "args": '[{"a": 1}, "a"]', "expected": "1"},
        {"name": "comma not ok", "function": "lookup", "args": '[{"a": 1}, "b"]', "expected": "null"},
        {"name": "struct", "function": "point", "args": "[2]", "expected": '{"x": 2, "Y": 4}'},
        {"name": "nil slice", "function": "nothing", "args": "[]", "expected": "[]"},
        {"name": "panic", "function": "index", "args": "[[1]]", "expected": "0"},
        {"name": "two results", "function": "pair", "args": "[]", "expected": '["half", 0.5]'},
        {"name": "string as runes", "function": "letters", "args": '["héllo"]', "expected": "5"},
        {"name": "bad argument", "function": "letters", "args": "[3]", "expected": "1"},
        {"name": "noisy", "function": "noisy", "args": "[]", "expected": "1"},
        {"name": "ops", "ops": '[["Counter", [1]], ["add", [2, 3]], ["add", []], ["value", []]]',
         "expected": "[null, null, null, 6]"},
        {"name": "bad constructor", "ops": '[["Counter", [-1]], ["value", []]]', "expected": "[null, 0]"},
    ]  # fmt: skip
    result = await run_go(sandbox, GO_VALUES, cases)
    outcomes = {outcome.name: outcome for outcome in result.results}
    assert result.status == "failed"
    assert {name for name, outcome in outcomes.items() if outcome.passed} == {
        "no error", "comma ok", "comma not ok", "struct", "nil slice", "two results", "string as runes", "ops",
    }  # fmt: skip
    assert outcomes["error"].message == "division by zero"
    assert outcomes["panic"].message == "panic: runtime error: index out of range [5] with length 1"
    assert outcomes["noisy"].message == "panic: custom 7"
    assert result.output[10][0] == "to stdout\n"
    assert outcomes["bad argument"].message.startswith("argument 1 of letters: cannot unmarshal number")
    assert outcomes["bad constructor"].message == "negative start"
    assert result.results[11].input == "o := newCounter(1)\no.Add(2, 3)\no.Add()\no.Value()"


async def test_program_tests_run_main_with_their_stdin(sandbox: LanguageGrader) -> None:
    program = """package main

import (
	"bufio"
	"fmt"
	"os"
)

func main() {
	scanner := bufio.NewScanner(os.Stdin)
	lines := 0
	for scanner.Scan() {
		lines++
	}
	fmt.Println("lines:", lines)
	if lines > 2 {
		panic("too many lines")
	}
}
"""
    cases = [
        {"name": "two", "stdin": "a\nb\n", "expected_stdout": "lines: 2\n"},
        {"name": "none", "stdin": "", "expected_stdout": "lines: 0\n"},
        {"name": "crash", "stdin": "1\n2\n3\n", "expected_stdout": "lines: 3\n"},
    ]
    result = await run_go(sandbox, program, cases)
    assert [outcome.passed for outcome in result.results] == [True, True, True]  # output compared, as printed
    crash = await run_go(sandbox, program, [{**cases[2], "expected_stdout": "lines: 4\n"}])
    assert crash.results[0].message == "panic: too many lines"
    missing = await run_go(sandbox, "package main\n\nfunc helper() {}\n", cases)
    assert missing.status == "error" and "function main is undeclared" in missing.stderr


async def test_infinite_loop_times_out_and_costs_the_run_little(sandbox: LanguageGrader) -> None:
    started = time.perf_counter()
    endless = CHUNK.replace("var out [][]any", "for {\n\t}\n\tvar out [][]any")
    result = await run_go(sandbox, endless, CHUNK_CASES)
    assert result.status == "timeout"
    assert result.tests_passed == 0
    assert result.results[0].message == "timed out"
    assert time.perf_counter() - started < TEST_TIMEOUT_MS / 1000 + 4


PROBE = """package main

import (
	"os"
	"syscall"
)

var _, _ = syscall.Socket, os.Stat

func probe() bool {
	%s
}
"""
CONTAINMENT = {
    "host files are not visible": """_, err1 := os.Stat("/etc/passwd")
	_, err2 := os.Stat("/root")
	return err1 == nil || err2 == nil""",
    "the job dir is read-only": """return os.WriteFile("/job/x", []byte("1"), 0o644) == nil ||
		os.WriteFile("/job/build/prog", []byte("1"), 0o755) == nil""",
    "no network": """fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	return syscall.Connect(fd, &syscall.SockaddrInet4{Port: 5432, Addr: [4]byte{127, 0, 0, 1}}) == nil""",
    "no environment": """for _, kv := range os.Environ() {
		if kv != "PATH=/usr/bin" && kv != "HOME=/tmp" && kv != "GOMAXPROCS=2" {
			return true
		}
	}
	return false""",
}


@pytest.mark.parametrize("name", CONTAINMENT)
async def test_containment(sandbox: LanguageGrader, name: str) -> None:
    cases = [{"name": name, "function": "probe", "args": "[]", "expected": "false"}]
    result = await run_go(sandbox, PROBE % CONTAINMENT[name], cases, user=f"containment:{name}")
    assert result.status == "passed", result.results


async def test_packages_that_need_cgo_do_not_compile(sandbox: LanguageGrader) -> None:
    code = 'package main\n\nimport "net"\n\nfunc probe() bool {\n\t_, err := net.Dial("tcp", "x:1")\n'
    code += "\treturn err == nil\n}\n"
    result = await run_go(sandbox, code, [{"name": "net", "function": "probe", "args": "[]", "expected": "false"}])
    assert result.status == "error" and result.error_line == 3 and "could not import net" in result.stderr


async def test_memory_is_bounded_per_process(sandbox: LanguageGrader) -> None:
    hog = """package main

func hoard(mb int) int {
	var keep [][]byte
	for i := 0; i < mb; i++ {
		block := make([]byte, 1<<20)
		for j := range block {
			block[j] = 1
		}
		keep = append(keep, block)
	}
	return len(keep)
}
"""
    cases = [
        {"name": "too much", "function": "hoard", "args": "[2048]", "expected": "2048"},
        {"name": "fine", "function": "hoard", "args": "[8]", "expected": "8"},
    ]
    result = await run_go(sandbox, hog, cases)
    assert [outcome.passed for outcome in result.results] == [False, True]
    assert "out of memory" in result.results[0].message


async def test_fork_bomb_is_contained(sandbox: LanguageGrader) -> None:
    bomb = """package main

import "os/exec"

func chunk(items []any, size int) [][]any {
	for i := 0; i < 500; i++ {
		exec.Command("/bin/sh", "-c", "while :; do :; done").Start()
		exec.Command("/job/build/prog").Start()
	}
	for {
	}
}
"""
    result = await run_go(sandbox, bomb, CHUNK_CASES[:1])
    assert result.status in ("timeout", "error")
    assert (await run_go(sandbox, CHUNK, CHUNK_CASES)).status == "passed"  # the host and the slot are fine


async def test_a_test_cannot_find_another_tests_inputs(sandbox: LanguageGrader) -> None:
    """Each test runs in a process told only its own test; the parent (holding them all) is non-dumpable."""
    spy = """package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
)

func spy(secret string) string {
	var seen strings.Builder
	seen.WriteString(strings.Join(os.Args, " ") + strings.Join(os.Environ(), " "))
	data, _ := io.ReadAll(os.Stdin)
	seen.Write(data)
	paths, _ := filepath.Glob("/proc/[0-9]*/*")
	for _, path := range paths {
		name := filepath.Base(path)
		if name == "cmdline" || name == "environ" || name == "mem" {
			data, _ := os.ReadFile(path)
			seen.Write(data)
		}
	}
	if strings.Contains(seen.String(), "HIDDEN-SECRET") {
		return "found"
	}
	return "nothing"
}
"""
    cases = [
        {"name": "visible", "function": "spy", "args": '["mine"]', "expected": '"nothing"'},
        {"name": "hidden", "function": "spy", "args": '["HIDDEN-SECRET"]', "expected": '"nothing"'},
    ]
    result = await run_go(sandbox, spy, cases)
    assert result.results[0].passed, result.results[0]  # the first test never sees the second's input


def test_go_is_offered_with_its_version() -> None:
    offered = graded()
    if GO.available:
        assert offered["go"].version and offered["go"].version.split(".")[0] == "1"


async def test_catalog_parity_go(sandbox: LanguageGrader) -> None:
    """Each Go reference passes its cases and each starter (which compiles) fails them, in the real sandbox."""
    specs = [spec for spec in load_catalog() if "go" in spec.variants]
    assert {spec.slug for spec in specs} == {spec.slug for spec in load_catalog()}  # every exercise, no exception

    async def check(spec) -> list[str]:
        variant = spec.variants["go"]
        reference, starter = await asyncio.gather(
            run_go(sandbox, variant.solution, variant.tests, user=f"go-reference:{spec.slug}"),
            run_go(sandbox, variant.starter_code, variant.tests, user=f"go-starter:{spec.slug}"),
        )
        problems = []
        if reference.status != "passed":
            failing = [(o.name, o.message) for o in reference.results if not o.passed]
            problems.append(f"{spec.slug}: reference {reference.status} {reference.stderr[:200]} {failing[:3]}")
        if starter.status == "passed":
            problems.append(f"{spec.slug}: the starter passes")
        if starter.status == "error" and starter.error_line is not None:
            problems.append(f"{spec.slug}: the starter does not compile: {starter.stderr[:200]}")
        return problems

    problems = [problem for found in await asyncio.gather(*map(check, specs)) for problem in found]
    assert not problems, problems


def test_catalog_and_harness_are_gofmt_clean(tmp_path: Path) -> None:
    """Every Go starter and reference as `gofmt` writes it (what students are shown is idiomatic Go)."""
    gofmt = GOROOT / "bin" / "gofmt"
    if not gofmt.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI must grade Go, but gofmt is not installed")
        pytest.skip("gofmt not installed")
    for spec in load_catalog():
        if "go" in spec.variants:
            (tmp_path / f"{spec.slug}-solution.go").write_text(spec.variants["go"].solution)
            (tmp_path / f"{spec.slug}-starter.go").write_text(spec.variants["go"].starter_code)
    unformatted = subprocess.run(
        [str(gofmt), "-l", str(tmp_path), str(GO_DIR)], capture_output=True, text=True, check=False
    )
    assert unformatted.returncode == 0 and not unformatted.stdout, unformatted.stdout + unformatted.stderr


# --- through the API ---------------------------------------------------------------------------------

VISIBLE = [{"name": "small", "function": "add_numbers", "args": "[1, 2]", "expected": "3"}]
HIDDEN = [
    {"name": "large", "function": "add_numbers", "args": "[1000, 2345]", "expected": "3345"},
    {"name": "negative", "function": "add_numbers", "args": "[-7, 3]", "expected": "-4"},
]
GO_ADD = (
    'package main\n\nimport "fmt"\n\nfunc addNumbers(a, b int) int {\n\tfmt.Println("args", a, b)\n\treturn a + b\n}\n'
)


async def test_go_exercises_through_the_api(app: Quart, client: QuartClient, runner: RunnerSandbox) -> None:
    """Go is listed with its version; a Go submission is graded on the neutral cases, hidden ones hidden;
    a Go student's daily exercise is in Go."""
    headers, _ = await sign_in(client, programming_language="go")
    languages = (await (await client.get(f"{EXERCISES}/languages", headers=headers)).get_json())["items"]
    assert {"name": "go", "title": "Go", "version": GO.version} in [
        {key: item[key] for key in ("name", "title", "version")} for item in languages
    ]
    exercise_id = await add_exercise(
        app,
        slug="go-add-numbers",
        family="go-add-numbers",
        language="go",
        starter_code='package main\n\nfunc addNumbers(a, b int) int {\n\tpanic("write your solution here")\n}\n',
        solution=GO_ADD,
        examples=VISIBLE,
        tests=VISIBLE + HIDDEN,
        topics=["go-add-numbers"],
    )
    daily = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert daily["exercise"]["language"] == "go" and daily["language_note"] is None
    passed = (await submit(client, headers, exercise_id, GO_ADD))["submission"]
    assert passed["status"] == "passed", passed["results"]
    assert passed["rubric"]["style"] == 1.0  # gofmt-clean (the grade also times the run: not asserted)
    # Style is gofmt's: the same code laid out by hand passes every test, and loses style points for where
    # gofmt would change it (checked in the sandbox's compile step).
    untidy = GO_ADD.replace("\treturn a + b", "  return a+b").replace(
        "func addNumbers(a, b int) int {", "func addNumbers(a,b int) int{"
    )
    sloppy = (await submit(client, headers, exercise_id, untidy))["submission"]
    assert sloppy["status"] == "passed" and sloppy["rubric"]["style"] < 1.0 and sloppy["grade"] < 100
    assert "line 5: gofmt lays this out differently" in json.dumps(sloppy["improvements"] + [sloppy["feedback"]])
    assert "args 1 2" in passed["stdout"] and "2345" not in passed["stdout"]  # hidden tests' output withheld
    failed = (await submit(client, headers, exercise_id, GO_ADD.replace("a + b", "a - b")))["submission"]
    by_name = {row["name"]: row for row in failed["results"]}
    assert failed["status"] == "failed" and not by_name["large"]["passed"]
    assert "2345" not in json.dumps(failed) and by_name["small"]["input"] == "addNumbers(1, 2)"
    broken = (await submit(client, headers, exercise_id, GO_ADD.replace("return a + b", "return a +")))["submission"]
    assert broken["status"] == "error" and "solution.go:8" in broken["stderr"]


async def test_generating_in_go_is_verified_by_running_it(
    make_app: AppFactory, openai_server: FakeOpenAI, runner: RunnerSandbox
) -> None:
    openai_server.reset()
    app = await make_app(**llm_settings(openai_server))
    client = app.test_client()
    headers, _ = await sign_in(client)
    exercise = {
        "title": "Multiply two numbers",
        "description": "Write `multiply(a, b int) int`.",
        "starter_code": 'package main\n\nfunc multiply(a, b int) int {\n\tpanic("write your solution here")\n}\n',
        "solution": "package main\n\nfunc multiply(a, b int) int {\n\treturn a * b\n}\n",
        "difficulty": "easy",
        "exercise_type": "algorithm",
        "topics": ["math"],
        "hints": ["One operator.", "It is `*`.", "Return a * b."],
        "tests": [
            {"name": f"case {n}", "function": "multiply", "args": [n, n + 1], "expected": n * (n + 1)} for n in range(6)
        ],
    }
    openai_server.reply = json.dumps(exercise)
    response = await client.post(f"{EXERCISES}/generate", json={"language": "go"}, headers=headers)
    body = await response.get_json()
    assert response.status_code == 201, body
    assert body["language"] == "go" and "package main" in json.dumps(openai_server.last_request)
    openai_server.reply = json.dumps({**exercise, "solution": exercise["solution"].replace("a * b", "a + b")})
    assert (await client.post(f"{EXERCISES}/generate", json={"language": "go"}, headers=headers)).status_code == 502
