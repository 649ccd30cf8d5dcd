"""C++ graded for real: g++ in the runner's compile step, the prebuilt harness, every test in a fresh exec.

Through the session's real runner process (`python -m backend sandbox`), as the API reaches it: a correct
solution passes, a wrong one fails by test name, a compile error gives its line in solution.cpp, an endless
loop times out, a segfault costs one test, the containment holds (files, network, environment, fork bomb,
memory), a child cannot read the parent harness (which holds every hidden test), and every catalog
exercise's reference passes while its starter fails. Under CI=true a missing g++ or bubblewrap fails these
tests, never skips.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from quart.testing import QuartClient

import backend.integrations.sandbox.languages
from backend.content.catalog import load_catalog
from backend.integrations.sandbox import RunnerSandbox, RunResult
from backend.integrations.sandbox.languages import LANGUAGES, LanguageGrader, graded
from tests.api.test_exercises import EXERCISES, sign_in
from tests.runners import shared_runner_url

CPP = LANGUAGES["cpp"]
TIMEOUT = 20.0  # a compile (30 s at most) comes on top
TEST_TIMEOUT_MS = 2000


def _require_toolchain() -> None:
    missing = [what for what, ok in (("bwrap", shutil.which("bwrap")), ("g++", CPP.available)) if not ok]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must grade C++, but {missing} is not installed")
        pytest.skip(f"{missing} not installed")


@pytest.fixture(scope="module")
async def runner() -> AsyncIterator[RunnerSandbox]:
    _require_toolchain()
    client = RunnerSandbox(shared_runner_url(), timeout_seconds=TIMEOUT, queue_timeout_seconds=300)
    yield client
    await client.close()


@pytest.fixture(scope="module")
def sandbox(runner: RunnerSandbox) -> LanguageGrader:
    return LanguageGrader(runner, timeout_seconds=TIMEOUT, queue_timeout_seconds=300)


async def run(sandbox: LanguageGrader, code: str, cases: list[dict], user: str | None = None) -> RunResult:
    # The runner runs one job per user key at a time (fair queueing): parallel runs use a key each.
    return await sandbox.grade(CPP, code, cases, test_timeout_ms=TEST_TIMEOUT_MS, user=user or uuid.uuid4().hex)


CHUNK_CASES = [
    {"name": "pairs", "function": "chunk", "args": "[[1, 2, 3, 4, 5], 2]", "expected": "[[1, 2], [3, 4], [5]]"},
    {"name": "strings", "function": "chunk", "args": '[["a", "b", "c"], 2]', "expected": '[["a", "b"], ["c"]]'},
    {"name": "empty", "function": "chunk", "args": "[[], 3]", "expected": "[]"},
]
CHUNK = """#include <iostream>
#include <vector>

template <typename T>
std::vector<std::vector<T>> chunk(const std::vector<T>& items, std::size_t size) {
    std::vector<std::vector<T>> out;
    for (std::size_t i = 0; i < items.size(); i += size)
        out.emplace_back(items.begin() + i, items.begin() + std::min(items.size(), i + size));
    std::cout << "chunked " << items.size() << std::endl;
    return out;
}
"""
CRASH_CASES = [
    {"name": "crashes", "function": "f", "args": "[0]", "expected": "1"},
    {"name": "fine", "function": "f", "args": "[2]", "expected": "3"},
]


async def test_correct_solution_passes_and_values_compare_on_the_server(sandbox: LanguageGrader) -> None:
    result = await run(sandbox, CHUNK, CHUNK_CASES)
    assert result.status == "passed", result.results
    assert result.tests_passed == 3
    assert result.results[0].input == "chunk([1, 2, 3, 4, 5], 2)"
    assert result.output[0] == ("chunked 5\n", "")  # each test's output is its own


async def test_style_is_clang_formats_with_the_line_it_would_change(sandbox: LanguageGrader) -> None:
    """The style part of the grade: what clang-format (the catalog's style) would change in the submission,
    found in the sandbox's compile step; a clang-format-clean file has no finding."""
    if CPP.style_check is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must score C++ style, but clang-format is not installed")
        pytest.skip("clang-format not installed")
    assert (await run(sandbox, CHUNK, CHUNK_CASES)).style == []
    untidy = CHUNK.replace("    std::vector<std::vector<T>> out;", "  std::vector<std::vector<T> >   out ;")
    result = await run(sandbox, untidy, CHUNK_CASES)
    assert result.status == "passed" and result.style is not None and len(result.style) == 1
    assert result.style[0].startswith("line 6: clang-format lays this out differently")


def test_catalog_is_clang_format_clean(tmp_path: Path) -> None:
    """Every C++ starter and reference as the style check wants it: a student who keeps the starter's layout
    loses nothing. One clang-format for all of them (`-i` on copies, then compared): its start is most of
    its cost, and there are 100 files."""
    if CPP.style_check is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must score C++ style, but clang-format is not installed")
        pytest.skip("clang-format not installed")
    build = (Path(backend.integrations.sandbox.languages.__file__).parent / "cpp" / "build.sh").read_text()
    style = re.search(r"^style='(.*)'$", build, re.M)
    assert style is not None
    sources: dict[str, str] = {}
    for spec in load_catalog():
        variant = spec.variants.get("cpp")
        parts = {"solution": variant.solution, "starter": variant.starter_code} if variant else {}
        for part, code in parts.items():
            sources[f"{spec.slug} {part}"] = code
            (tmp_path / f"{spec.slug}-{part}.cpp").write_text(code)
    assert sources
    subprocess.run(
        ["clang-format", f"--style={style.group(1)}", "-i", *sorted(str(path) for path in tmp_path.glob("*.cpp"))],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    unformatted = [
        name for name, code in sources.items() if (tmp_path / (name.replace(" ", "-") + ".cpp")).read_text() != code
    ]
    assert not unformatted


async def test_wrong_solution_fails_with_the_failing_test_names(sandbox: LanguageGrader) -> None:
    result = await run(sandbox, CHUNK.replace("i + size)", "i + size + 1)"), CHUNK_CASES)
    assert result.status == "failed"
    assert [outcome.name for outcome in result.results if not outcome.passed] == ["pairs", "strings"]
    assert "expected [[1, 2], [3, 4], [5]]" in result.results[0].message


async def test_a_resubmitted_source_is_not_compiled_again(sandbox: LanguageGrader, runner: RunnerSandbox) -> None:
    code = CHUNK + f"// {uuid.uuid4().hex}\n"
    first = await run(sandbox, code, CHUNK_CASES)
    compiles = (await runner.status())["artifacts"]["compiles"]
    started = time.perf_counter()
    again = await run(sandbox, code, CHUNK_CASES)
    assert first.status == again.status == "passed"
    assert (await runner.status())["artifacts"]["compiles"] == compiles
    assert time.perf_counter() - started < 2


async def test_compile_error_reports_its_line_in_the_submission(sandbox: LanguageGrader) -> None:
    broken = "#include <vector>\n\nint f(int x) {\n    return x +;\n}\n"
    result = await run(sandbox, broken, CRASH_CASES)
    assert result.status == "error"
    assert result.error_line == 4
    assert result.stderr.startswith("solution.cpp:4: error: expected primary-expression")
    assert "/job/" not in result.stderr and "dispatch.cpp" not in result.stderr
    # A type error inside a template is reported at its line in the submission too.
    typo = CHUNK.replace("out.emplace_back(", "out.emplace_bak(")
    result = await run(sandbox, typo, CHUNK_CASES)
    assert result.status == "error"
    assert result.error_line == 8


async def test_exceptions_and_missing_functions_fail_their_test(sandbox: LanguageGrader) -> None:
    code = '#include <stdexcept>\nint f(int x) { if (x == 0) throw std::invalid_argument("nope"); return x + 1; }\n'
    missing = {"name": "missing", "function": "g", "args": "[]", "expected": "1"}
    result = await run(sandbox, code, [*CRASH_CASES, missing])
    assert result.status == "failed"
    assert result.results[0].message == "std::invalid_argument: nope"
    assert result.results[1].passed
    assert "g is not defined as a function taking 0 arguments" in result.results[2].message


async def test_a_segfault_costs_one_test(sandbox: LanguageGrader) -> None:
    code = "int f(int x) {\n    int* p = nullptr;\n    if (x == 0) return *p;\n    return x + 1;\n}\n"
    result = await run(sandbox, code, CRASH_CASES)
    assert result.status == "failed"
    assert result.results[0].message.startswith("crashed: Segmentation fault")
    assert result.results[1].passed


async def test_infinite_loop_times_out(sandbox: LanguageGrader) -> None:
    code = "int f(int x) {\n    volatile int spin = 1;\n    while (spin) {}\n    return x;\n}\n"
    # Compiled first (the compile's time is not the run's), then run against the clock.
    await run(sandbox, code, CRASH_CASES)
    started = time.perf_counter()
    result = await run(sandbox, code, CRASH_CASES)
    assert result.status == "timeout"
    assert result.tests_passed == 0
    assert time.perf_counter() - started < TEST_TIMEOUT_MS / 1000 + 3


async def test_programs_read_their_stdin(sandbox: LanguageGrader) -> None:
    # No `return` in main: as in any C++ program, it returns 0.
    code = """#include <iostream>
int main() {
    long long a, b;
    std::cin >> a >> b;
    std::cout << a + b << '\\n';
}
"""
    cases = [
        {"name": "adds", "stdin": "2 3\n", "expected_stdout": "5\n"},
        {"name": "big", "stdin": "4000000000 1\n", "expected_stdout": "4000000001\n"},
    ]
    result = await run(sandbox, code, cases)
    assert result.status == "passed", result.results


PROBES = {
    "host files are not visible": """#include <fstream>
bool probe() { return std::ifstream("/etc/passwd").good() || std::ifstream("/root/.bashrc").good(); }""",
    "the job dir is read-only": """#include <fstream>
bool probe() { std::ofstream out("/job/x"); out << "1"; out.flush(); return out.good(); }""",
    "no network": """#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
bool probe() {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(5432);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool connected = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(s);
    return connected;
}""",
    "no environment": """#include <cstring>
extern char** environ;
bool probe() {
    for (char** e = environ; *e; ++e) {
        if (std::strncmp(*e, "PATH=", 5) != 0 && std::strncmp(*e, "HOME=", 5) != 0) return true;
    }
    return false;
}""",
    # The parent harness (the namespace's init) holds every test, hidden ones included: non-dumpable.
    "the harness's memory is out of reach": """#include <fstream>
#include <string>
bool probe() {
    std::ifstream mem("/proc/1/mem"), environ("/proc/1/environ");
    std::string line;
    return mem.good() || std::getline(environ, line).good();
}""",
}


@pytest.mark.parametrize("name", PROBES)
async def test_containment(sandbox: LanguageGrader, name: str) -> None:
    cases = [{"name": name, "function": "probe", "args": "[]", "expected": "false"}]
    result = await run(sandbox, PROBES[name], cases)
    assert result.status == "passed", result.results


async def test_memory_is_bounded(sandbox: LanguageGrader) -> None:
    code = """#include <vector>
long long hoard(int mb) {
    std::vector<char> v(mb * 1024LL * 1024, 1);
    return v.size();
}
"""
    cases = [
        {"name": "too much", "function": "hoard", "args": "[2048]", "expected": "0"},
        {"name": "a little", "function": "hoard", "args": "[8]", "expected": str(8 * 1024 * 1024)},
    ]
    result = await run(sandbox, code, cases)
    assert result.results[0].message == "std::bad_alloc"
    assert result.results[1].passed


async def test_fork_bomb_is_contained(sandbox: LanguageGrader) -> None:
    bomb = "#include <unistd.h>\nint f(int) {\n    for (int i = 0; i < 500; ++i) fork();\n    for (;;) {}\n}\n"
    result = await run(sandbox, bomb, CRASH_CASES[:1])
    assert result.status in ("timeout", "error")
    # The host is fine: a normal run still passes right after.
    assert (await run(sandbox, CHUNK, CHUNK_CASES)).status == "passed"


def test_hidden_tests_are_never_sent_expected_values() -> None:
    stdin = json.loads(CPP.run_stdin(CHUNK_CASES, output_cap=65536, test_timeout_ms=TEST_TIMEOUT_MS))
    assert "expected" not in json.dumps(stdin)
    assert [test["shape"] for test in stdin["tests"]] == [0, 1, 0]  # two call sites: int and string vectors


async def test_the_api_lists_cpp_with_its_version(client: QuartClient) -> None:
    _require_toolchain()
    headers, _ = await sign_in(client)
    response = await client.get(f"{EXERCISES}/languages", headers=headers)
    items = {item["name"]: item for item in (await response.get_json())["items"]}
    assert items["cpp"] == {"name": "cpp", "title": "C++", "version": graded()["cpp"].version}
    assert items["cpp"]["version"].split(".")[0].isdigit()


async def test_catalog_parity_cpp(sandbox: LanguageGrader) -> None:
    """Each C++ reference passes its cases and each starter fails them, in the real sandbox."""
    specs = [spec for spec in load_catalog() if "cpp" in spec.variants]
    assert {spec.slug for spec in specs} == {spec.slug for spec in load_catalog()}  # every exercise, no exception

    async def check(spec) -> list[str]:
        variant = spec.variants["cpp"]
        reference, starter = await asyncio.gather(
            run(sandbox, variant.solution, variant.tests, user=f"reference:{spec.slug}"),
            run(sandbox, variant.starter_code, variant.tests, user=f"starter:{spec.slug}"),
        )
        problems = []
        if reference.status != "passed":
            failing = [(o.name, o.message) for o in reference.results if not o.passed]
            problems.append(f"{spec.slug}: reference {reference.status} {failing[:3]} {reference.stderr[:300]}")
        if starter.status == "passed":
            problems.append(f"{spec.slug}: the starter passes")
        return problems

    problems = [problem for found in await asyncio.gather(*map(check, specs)) for problem in found]
    assert not problems, problems
