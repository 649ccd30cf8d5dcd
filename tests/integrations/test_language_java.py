"""Exercises in Java, graded for real: javac and the JVM harness in bubblewrap, through the session's runner.

A correct solution passes, a wrong one fails by test name, a compile error gives its line, an endless loop
times out, containment holds (files, network, environment, processes, threads, memory), the harness is
never told an expected value, and every catalog exercise's Java reference passes while its starter compiles
and fails. Under CI=true a missing JDK or bubblewrap fails these tests, never skips.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from quart import Quart
from quart.testing import QuartClient

from backend.content.catalog import load_catalog
from backend.integrations.sandbox import RunnerSandbox, RunResult
from backend.integrations.sandbox.base import NOT_FINISHED
from backend.integrations.sandbox.languages import LANGUAGES, LanguageGrader, graded_tests
from backend.integrations.sandbox.languages.language import job_input
from backend.integrations.sandbox.protocol import MAX_FILES, Job, grade_execution
from tests.api.test_chat import llm_settings
from tests.api.test_exercises import EXERCISES, add_exercise, sign_in, submit
from tests.conftest import AppFactory
from tests.fakes.llm_servers import FakeOpenAI
from tests.runners import shared_runner_url

JAVA = LANGUAGES["java"]
TIMEOUT = 20.0
TEST_TIMEOUT_MS = 2000


def _require_java() -> None:
    missing = [what for what, ok in (("bwrap", shutil.which("bwrap")), ("javac", JAVA.available)) if not ok]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must grade Java, but {missing} is not installed")
        pytest.skip(f"{missing} not installed")


@pytest.fixture(scope="module")
async def runner() -> AsyncIterator[RunnerSandbox]:
    """The session's real runner process (`python -m backend sandbox`), as the API reaches it."""
    _require_java()
    client = RunnerSandbox(shared_runner_url(), timeout_seconds=TIMEOUT, queue_timeout_seconds=300)
    yield client
    await client.close()


@pytest.fixture(scope="module")
def sandbox(runner: RunnerSandbox) -> LanguageGrader:
    return LanguageGrader(runner, timeout_seconds=TIMEOUT, queue_timeout_seconds=300)


async def run_java(sandbox: LanguageGrader, code: str, cases: list[dict], user: str | None = None) -> RunResult:
    # The runner runs one job per user key at a time (fair queueing): concurrent checks use a key each.
    return await sandbox.grade(JAVA, code, cases, test_timeout_ms=TEST_TIMEOUT_MS, user=user or uuid.uuid4().hex)


CHUNK_CASES = [
    {"name": "pairs", "function": "chunk", "args": "[[1, 2, 3, 4, 5], 2]", "expected": "[[1, 2], [3, 4], [5]]"},
    {"name": "empty", "function": "chunk", "args": "[[], 3]", "expected": "[]"},
    {"name": "objects", "function": "chunk", "args": '[[{"a": null}], 1]', "expected": '[[{"a": null}]]'},
]
CHUNK = """import java.util.ArrayList;
import java.util.List;

public class Solution {
    public static <T> List<List<T>> chunk(List<T> items, int size) {
        List<List<T>> out = new ArrayList<>();
        for (int i = 0; i < items.size(); i += size) {
            out.add(new ArrayList<>(items.subList(i, Math.min(items.size(), i + size))));
        }
        System.out.println("chunked " + items.size());
        return out;
    }
}
"""


async def test_correct_solution_passes_and_values_compare_on_the_server(sandbox: LanguageGrader) -> None:
    result = await run_java(sandbox, CHUNK, CHUNK_CASES)
    assert result.status == "passed", result.results
    assert result.tests_passed == 3
    assert result.results[0].input == "chunk([1, 2, 3, 4, 5], 2)"
    assert "chunked 5" in result.stdout


async def test_wrong_solution_fails_with_the_failing_test_names(sandbox: LanguageGrader) -> None:
    wrong = CHUNK.replace("i + size)", "i + size + 1)")
    result = await run_java(sandbox, wrong, CHUNK_CASES)
    assert result.status == "failed"
    assert [outcome.name for outcome in result.results if not outcome.passed] == ["pairs"]
    assert "expected [[1, 2], [3, 4], [5]]" in result.results[0].message


async def test_harness_is_never_told_the_expected_values(sandbox: LanguageGrader) -> None:
    sent = json.loads(JAVA.run_stdin(CHUNK_CASES, output_cap=65536, test_timeout_ms=TEST_TIMEOUT_MS))
    assert "expected" not in json.dumps(sent)
    # A submission printing a fake report, or returning a lookalike string, passes nothing.
    forged = (
        "public class Solution {\n    public static String chunk(java.util.List<Object> items, int size) {\n"
        '        System.out.println("{\\"event\\": \\"call\\", \\"index\\": 0}");\n'
        '        return "[[1, 2], [3, 4], [5]]";\n    }\n}\n'
    )
    result = await run_java(sandbox, forged, CHUNK_CASES)
    assert result.tests_passed == 0


async def test_compile_error_reports_its_line_without_sandbox_paths(sandbox: LanguageGrader) -> None:
    broken = "public class Solution {\n    public static int chunk() {\n        return 1\n    }\n}\n"
    result = await run_java(sandbox, broken, CHUNK_CASES)
    assert result.status == "error"
    assert result.error_line == 3
    assert "Solution.java:3: error: ';' expected" in result.stderr
    assert "/job" not in result.stderr and "/out" not in result.stderr
    # The same broken source again: the failed compile is cached, the answer is the same.
    again = await run_java(sandbox, broken, CHUNK_CASES)
    assert (again.status, again.error_line) == ("error", 3)


async def test_exceptions_are_the_tests_message_and_only_builtin_names_are_kinds(sandbox: LanguageGrader) -> None:
    code = """class Secret42Exception extends RuntimeException {}

public class Solution {
    public static int builtin() {
        throw new IllegalStateException("nope");
    }

    public static int own() {
        throw new Secret42Exception();
    }
}
"""
    cases = [
        {"name": "builtin", "function": "builtin", "args": "[]", "expected": "1"},
        {"name": "own", "function": "own", "args": "[]", "expected": "1"},
    ]
    result = await run_java(sandbox, code, cases)
    assert result.status == "failed"
    assert result.results[0].message == "IllegalStateException: nope"
    assert result.results[1].failure == "raised an exception"  # its name could carry a hidden test's data


async def test_infinite_loop_times_out_and_the_next_run_is_fine(sandbox: LanguageGrader) -> None:
    endless = "public class Solution {\n    public static int loops() {\n        while (true) {\n        }\n    }\n}\n"
    started = time.perf_counter()
    result = await run_java(sandbox, endless, [{"name": "loops", "function": "loops", "args": "[]", "expected": "1"}])
    assert result.status == "timeout"
    assert result.tests_passed == 0
    assert time.perf_counter() - started < TEST_TIMEOUT_MS / 1000 + 8  # + a compile of the new source
    assert (await run_java(sandbox, CHUNK, CHUNK_CASES)).status == "passed"


CONTAINMENT = """import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

public class Solution {
    public static boolean hostFiles() {
        return Files.exists(Path.of("/etc/passwd")) || Files.exists(Path.of("/root")) || Files.exists(Path.of("/work"));
    }

    public static boolean writeJob() {
        try {
            Files.writeString(Path.of("/job/x"), "1");
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    public static boolean network() {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress("127.0.0.1", 5432), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    public static boolean environment() {
        List<String> expected = List.of("PATH", "HOME", "PWD", "MALLOC_ARENA_MAX");
        return System.getenv().keySet().stream().anyMatch(key -> !expected.contains(key));
    }
}
"""


async def test_containment(sandbox: LanguageGrader) -> None:
    """No host files, a read-only job dir, no network, no environment (one submission, a test each)."""
    cases = [
        {"name": name, "function": function, "args": "[]", "expected": "false"}
        for name, function in (
            ("host files are not visible", "host_files"),
            ("the job dir is read-only", "write_job"),
            ("no network", "network"),
            ("no environment", "environment"),
        )
    ]
    result = await run_java(sandbox, CONTAINMENT, cases)
    assert result.status == "passed", result.results


async def test_processes_threads_and_memory_are_bounded(sandbox: LanguageGrader) -> None:
    """A fork bomb, a thread bomb and memory hoarding (heap and native) fail their own test, no more: the
    host is fine and the run goes on to its next test."""
    code = """import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

public class Solution {
    public static String fork() {
        int started = 0;
        try {
            for (int i = 0; i < 500; i++) {
                new ProcessBuilder("/usr/bin/sleep", "100").start();
                started++;
            }
        } catch (Throwable e) { // IOException, or OutOfMemoryError: ProcessBuilder starts a thread too
            return "stopped";
        }
        return "started " + started;
    }

    public static String threads() {
        try {
            for (int i = 0; i < 10000; i++) {
                Thread thread = new Thread(() -> {
                    try { Thread.sleep(100000); } catch (InterruptedException e) { }
                });
                thread.start();
            }
        } catch (Throwable e) {
            return "stopped";
        }
        return "started them all";
    }

    public static int heap() {
        List<long[]> hoard = new ArrayList<>();
        for (int i = 0; i < 4096; i++) hoard.add(new long[1 << 20]);
        return hoard.size();
    }

    public static int offHeap() {
        List<ByteBuffer> hoard = new ArrayList<>();
        for (int i = 0; i < 4096; i++) hoard.add(ByteBuffer.allocateDirect(8 << 20));
        return hoard.size();
    }

    public static int still() {
        return 42;
    }
}
"""
    cases = [
        {"name": "fork", "function": "fork", "args": "[]", "expected": '"stopped"'},
        {"name": "threads", "function": "threads", "args": "[]", "expected": '"stopped"'},
        {"name": "heap", "function": "heap", "args": "[]", "expected": "4096"},
        {"name": "still alive", "function": "still", "args": "[]", "expected": "42"},
        # Last: the JVM's retries (GC, back-off) before refusing direct memory may outlast the test's limit.
        {"name": "off heap", "function": "off_heap", "args": "[]", "expected": "4096"},
    ]
    result = await run_java(sandbox, code, cases)
    outcomes = {outcome.name: outcome for outcome in result.results}
    assert outcomes["fork"].passed and outcomes["threads"].passed, result.results
    assert outcomes["heap"].message.startswith("OutOfMemoryError"), outcomes["heap"]
    assert outcomes["off heap"].message.startswith(("OutOfMemoryError", "timed out")), outcomes["off heap"]
    assert outcomes["still alive"].passed, result.results
    assert (await run_java(sandbox, CHUNK, CHUNK_CASES)).status == "passed"


PROGRAM = """import java.util.Scanner;

public class Solution {
    private static int runs = 0;

    public static void main(String[] args) {
        runs++;
        Scanner in = new Scanner(System.in);
        long sum = 0;
        while (in.hasNextLong()) {
            sum += in.nextLong();
        }
        if (sum < 0) {
            System.exit(3);
        }
        System.out.println(sum + " " + runs);
        System.exit(0);
    }
}
"""


async def test_programs_read_their_stdin_and_exit_is_trapped(sandbox: LanguageGrader) -> None:
    cases = [
        {"name": "negative", "stdin": "-5", "expected_stdout": "-5 1\n"},
        {"name": "sum", "stdin": "3\n4\n", "expected_stdout": "7 1\n"},
        {"name": "fresh statics", "stdin": "1 2 3", "expected_stdout": "6 1\n"},
    ]
    result = await run_java(sandbox, PROGRAM, cases)
    outcomes = {outcome.name: outcome for outcome in result.results}
    assert outcomes["sum"].passed and outcomes["fresh statics"].passed, result.results
    # System.exit(3) ends that program, not the run; a non-zero status fails it.
    assert not outcomes["negative"].passed and "exited with status 3" in outcomes["negative"].message


async def test_classes_are_constructed_and_iterated_by_their_ops(sandbox: LanguageGrader) -> None:
    code = """import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

class Bag implements Iterable<Object> {
    private final List<Object> items = new ArrayList<>();

    Bag(int first) {
        items.add(first);
    }

    void add(Object item) {
        items.add(item);
    }

    int count() {
        return items.size();
    }

    @Override
    public Iterator<Object> iterator() {
        return items.iterator();
    }
}
"""
    ops = '[["Bag", [1]], ["add", ["x"]], ["add", [{"k": [2.5, null]}]], ["count", []], ["__iter__", []]]'
    cases = [{"name": "bag", "ops": ops, "expected": '[null, null, null, 3, [1, "x", {"k": [2.5, null]}]]'}]
    result = await run_java(sandbox, code, cases)
    assert result.status == "passed", result.results
    assert result.results[0].input.startswith('o = new Bag(1)\no.add("x")')


async def test_a_resubmitted_source_is_not_compiled_again(runner: RunnerSandbox, sandbox: LanguageGrader) -> None:
    code = CHUNK + f"// {uuid.uuid4().hex}\n"  # a source nobody compiled yet
    before = int((await runner.status())["artifacts"]["compiles"])
    first = await run_java(sandbox, code, CHUNK_CASES)
    middle = int((await runner.status())["artifacts"]["compiles"])
    second = await run_java(sandbox, code, CHUNK_CASES)
    after = int((await runner.status())["artifacts"]["compiles"])
    assert first.status == second.status == "passed"
    assert middle - before >= 1 and after == middle


async def test_java_is_listed_and_submissions_are_graded_through_the_api(
    embedded_app: Quart, embedded_client: QuartClient
) -> None:
    """GET /exercises/languages lists Java with its version; a Java student's daily exercise is in Java; a Java
    submission is graded on its cases, and a hidden case says how it failed, never its input."""
    _require_java()
    app, client = embedded_app, embedded_client
    headers, _ = await sign_in(client)
    items = {
        item["name"]: item
        for item in (await (await client.get(f"{EXERCISES}/languages", headers=headers)).get_json())["items"]
    }
    assert items["java"]["version"] == JAVA.version and JAVA.version.split(".")[0].isdigit()
    family = f"chunk-{uuid.uuid4().hex[:8]}"
    await add_exercise(app, slug=family, family=family, topics=[family])
    exercise = await add_exercise(
        app,
        slug=f"{family}-java",
        family=family,
        topics=[family],
        language="java",
        starter_code="public class Solution {\n}\n",
        solution=CHUNK,
        examples=CHUNK_CASES[:1],
        tests=CHUNK_CASES,
    )
    # A student who picked Java gets the daily exercise in Java.
    java_headers, _ = await sign_in(client, programming_language="java")
    daily = await (await client.get(f"{EXERCISES}/daily", headers=java_headers)).get_json()
    assert (daily["exercise"]["language"], daily["language_note"]) == ("java", None), daily
    passed = (await submit(client, headers, exercise, CHUNK))["submission"]
    assert passed["status"] == "passed", passed["results"]
    assert passed["rubric"]["style"] == 1.0  # javac's lint finds nothing
    # Style is javac's lint: a raw type passes every test and costs style points, with its line named.
    raw = CHUNK.replace("List<List<T>> out = new ArrayList<>();", "List<List<T>> out = new ArrayList();")
    linted = (await submit(client, headers, exercise, raw))["submission"]
    assert linted["status"] == "passed" and linted["rubric"]["style"] < 1.0
    assert "line 6: [unchecked]" in json.dumps(linted["improvements"] + [linted["feedback"]])
    wrong = (await submit(client, headers, exercise, CHUNK.replace("i += size", "i += size + 1")))["submission"]
    by_name = {row["name"]: row for row in wrong["results"]}
    assert not by_name["pairs"]["passed"] and by_name["pairs"]["input"] == "chunk([1, 2, 3, 4, 5], 2)"
    assert by_name["objects"]["passed"] and by_name["objects"].get("input") is None  # hidden


# --- catalog parity ------------------------------------------------------------------------------


def java_specs() -> list:
    return [spec for spec in load_catalog() if "java" in spec.variants]


async def test_catalog_parity_java(runner: RunnerSandbox) -> None:
    """Each Java reference passes its cases and each starter compiles and fails them, in the real sandbox.

    javac and the JVM cost ~0.5 and ~0.2 s of CPU however small the source, so the check batches both. The
    sources are compiled 16 to a javac (the most files a job may hold), each in a package of its own
    (`p<n>.Solution.java` starting `package p<n>;` on its first line, so line numbers stay); each batch's
    call tests then run in one job against that cached artifact, each test naming its package, and each
    program source in a job of its own naming it. A starter is run on its first case only: failing it fails
    the starter; if it passes that one (or does not get to run it), all its cases run alone."""
    specs = java_specs()
    assert {spec.slug for spec in specs} == {spec.slug for spec in load_catalog()}  # every exercise, no exception
    sources = [(spec, kind) for spec in specs for kind in ("reference", "starter")]
    batches = [range(start, min(start + MAX_FILES, len(sources))) for start in range(0, len(sources), MAX_FILES)]

    def cases_of(number: int, every: bool = False) -> list[dict]:
        spec, kind = sources[number]
        cases = spec.variants["java"].tests
        return cases if kind == "reference" or every else cases[:1]

    async def run(files: dict[str, str], parts: list[tuple[int, list[dict]]], job_package: int | None) -> dict:
        """Outcomes per source number (or the compile error)."""
        tests = [{**job_input(case, "java"), "package": f"p{number}"} for number, cases in parts for case in cases]
        stdin = {"tests": tests, "output_cap": 65536, "test_timeout_ms": TEST_TIMEOUT_MS}
        if job_package is not None:
            stdin["package"] = f"p{job_package}"
        job = Job("java", files, json.dumps(stdin), TIMEOUT, 300, f"parity:{uuid.uuid4().hex}")
        graded = [test for _, cases in parts for test in graded_tests(cases, "java")]
        result = grade_execution(graded, await runner.execute(job))
        if result.status == "error":  # the batch did not compile (or the call child did not start)
            return {number: result.stderr[:300] for number, _ in parts}
        outcomes, at = {}, 0
        for number, cases in parts:
            outcomes[number], at = result.results[at : at + len(cases)], at + len(cases)
        return outcomes

    def problem(number: int, found: object) -> str | None:
        spec, kind = sources[number]
        if isinstance(found, str):
            return f"{spec.slug}: the {kind}'s batch does not compile or start: {found}"
        if kind == "reference" and not all(outcome.passed for outcome in found):
            return f"{spec.slug}: reference {[(o.name, o.message) for o in found if not o.passed][:3]}"
        return None

    def starter_failed(found: object) -> bool:
        return not isinstance(found, str) and any(not o.passed and o.failure != NOT_FINISHED for o in found)

    async def check(batch: range) -> list[str]:
        files = {f"p{number}.Solution.java": f"package p{number}; " + code_of(number) for number in batch}
        programs = [number for number in batch if any("stdin" in case for case in cases_of(number))]
        calls = [number for number in batch if number not in programs]
        found: dict = {}
        for outcomes in await asyncio.gather(
            run(files, [(number, cases_of(number)) for number in calls], None),
            *(run(files, [(number, cases_of(number))], number) for number in programs),
        ):
            found |= outcomes
        problems = [text for number in batch if (text := problem(number, found[number]))]
        for number in batch:
            if sources[number][1] == "starter" and not starter_failed(found[number]):
                again = (await run(files, [(number, cases_of(number, every=True))], number))[number]
                if not starter_failed(again):
                    problems.append(f"{sources[number][0].slug}: the starter passes")
        return problems

    def code_of(number: int) -> str:
        spec, kind = sources[number]
        return spec.variants["java"].solution if kind == "reference" else spec.variants["java"].starter_code

    problems = [problem for found in await asyncio.gather(*map(check, batches)) for problem in found]
    assert not problems, problems


@pytest.fixture
def fake_llm(openai_server: FakeOpenAI) -> FakeOpenAI:
    openai_server.reset()
    return openai_server


async def test_generated_java_exercises_are_verified_by_running_them(
    make_app: AppFactory, fake_llm: FakeOpenAI
) -> None:
    """POST /exercises/generate in Java: the prompt says what a Java submission looks like, the exercise is
    accepted only when its own solution passes its cases in the sandbox, and it is graded in Java."""
    _require_java()
    app = await make_app(**llm_settings(fake_llm))
    client = app.test_client()
    headers, _ = await sign_in(client, programming_language="java")
    solution = (
        "public class Solution {\n    public static long multiply(long a, long b) {\n        return a * b;\n    }\n}\n"
    )
    exercise = {
        "title": "Multiply two numbers",
        "description": "Write `multiply(a, b)`.",
        "starter_code": solution.replace(
            "return a * b;", 'throw new UnsupportedOperationException("write your solution here");'
        ),
        "solution": solution,
        "difficulty": "easy",
        "exercise_type": "algorithm",
        "topics": ["math"],
        "hints": ["One operator.", "It is `*`.", "Return a * b."],
        "tests": [
            {"name": f"case {n}", "function": "multiply", "args": [n, n + 1], "expected": n * (n + 1)} for n in range(6)
        ],
    }
    fake_llm.reply = json.dumps(exercise)
    response = await client.post(f"{EXERCISES}/generate", json={"language": "java"}, headers=headers)
    body = await response.get_json()
    assert response.status_code == 201, body
    assert body["language"] == "java" and body["examples"][0] == {"input": "multiply(0, 1)", "expected_output": "0"}
    assert "public static method of `public class Solution`" in json.dumps(fake_llm.last_request)
    passed = await submit(client, headers, body["id"], solution)
    assert passed["submission"]["status"] == "passed", passed["submission"]["results"]
    # A solution that fails its own cases (or does not compile) is rejected.
    fake_llm.reply = json.dumps({**exercise, "solution": solution.replace("a * b", "a + b")})
    rejected = await client.post(f"{EXERCISES}/generate", json={"language": "java"}, headers=headers)
    assert rejected.status_code == 502


# --- hidden inputs against an attacker (as tests/security/test_outsider_sandbox_languages.py for JavaScript) ---

SECRETS = ("424242", "313131", "272727", "161616")
# Everything a submission can reach from the JVM: every inherited descriptor (forged `output` events, which
# would be shown as the import's output, if one were the result channel) and the memory of every other
# process of the run (the supervisor holds the job). Whatever is found is printed and forged.
SNOOP = r"""import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.RandomAccessFile;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

public class Solution {
    // Built at run time, so the class file does not hold the digits the memory scan looks for.
    static final Pattern SECRET = Pattern.compile(212121 * 2 + "|" + 104377 * 3 + "|" + 90909 * 3 + "|" + 80808 * 2);

    static void forge(String text) {
        for (int fd = 3; fd < 64; fd++) {
            try {
                FileDescriptor descriptor = new FileDescriptor();
                Field number = FileDescriptor.class.getDeclaredField("fd");
                number.setAccessible(true);
                number.setInt(descriptor, fd);
                FileOutputStream out = new FileOutputStream(descriptor);
                for (String test : new String[] {"null", "0"}) {
                    String event = "{\"event\": \"output\", \"test\": " + test + ", \"stdout\": \"LEAK " + text
                            + "\\n\", \"stderr\": \"\"}\n";
                    out.write(event.getBytes(StandardCharsets.UTF_8));
                }
            } catch (Exception e) {
                // not a descriptor of ours
            }
        }
    }

    static List<String> scanMemory() {
        List<String> found = new ArrayList<>();
        long self = ProcessHandle.current().pid();
        try (Stream<Path> pids = Files.list(Path.of("/proc"))) {
            for (Path pid : pids.filter(p -> p.getFileName().toString().matches("\\d+")).toList()) {
                if (pid.getFileName().toString().equals(String.valueOf(self))) continue;
                try (RandomAccessFile memory = new RandomAccessFile(pid.resolve("mem").toFile(), "r")) {
                    for (String line : Files.readAllLines(pid.resolve("maps"))) {
                        String[] range = line.split(" ")[0].split("-");
                        if (!line.split(" ")[1].startsWith("rw")) continue;
                        long end = Long.parseUnsignedLong(range[1], 16);
                        byte[] buffer = new byte[4 << 20]; // 4 MiB windows, 16 bytes of overlap
                        for (long at = Long.parseUnsignedLong(range[0], 16); at < end; at += buffer.length - 16) {
                            int size = (int) Math.min(end - at, buffer.length);
                            try {
                                memory.seek(at);
                                memory.readFully(buffer, 0, size);
                            } catch (Exception e) {
                                break;
                            }
                            Matcher hit = SECRET.matcher(new String(buffer, 0, size, StandardCharsets.ISO_8859_1));
                            while (hit.find()) found.add(pid.getFileName() + ":" + hit.group());
                        }
                    }
                } catch (Exception e) {
                    // not readable: the supervisor is non-dumpable
                }
            }
        } catch (Exception e) {
            found.add("no /proc");
        }
        return found;
    }
"""
ATTACK_CALLS = (
    SNOOP
    + """
    public static int addNumbers(int first, int second) {
        System.out.println("args " + first + " " + second + " memory " + scanMemory());
        forge("args " + first + " " + second);
        return first + second;
    }
}
"""
)
ATTACK_PROGRAM = (
    SNOOP
    + """
    public static void main(String[] args) throws Exception {
        String input = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        System.out.println("stdin " + input.strip().replace("\\n", " ") + " memory " + scanMemory());
        forge(input.strip().replace("\\n", " "));
        long sum = 0;
        for (String line : input.strip().split("\\n")) sum += Long.parseLong(line.strip());
        System.out.println(sum);
    }
}
"""
)


def leaked(body: object) -> list[str]:
    text = json.dumps(body)
    return [secret for secret in SECRETS if secret in text]


async def test_an_attacker_cannot_surface_hidden_inputs(embedded_app: Quart, embedded_client: QuartClient) -> None:
    """Forged events into every descriptor and a scan of every other process's memory, from a call and from
    a program: no hidden input comes back, the visible examples' own output does, every hidden test runs."""
    _require_java()
    headers, _ = await sign_in(embedded_client)
    visible = [{"name": "small", "function": "add_numbers", "args": "[1, 2]", "expected": "3"}]
    hidden = [
        {"name": "big", "function": "add_numbers", "args": "[424242, 313131]", "expected": "737373"},
        {"name": "negative", "function": "add_numbers", "args": "[-272727, 161616]", "expected": "-111111"},
    ]
    calls = await add_exercise(
        embedded_app, language="java", examples=visible, tests=visible + hidden, solution=ATTACK_CALLS,
        starter_code="public class Solution {}\n",
    )  # fmt: skip
    body = await submit(embedded_client, headers, calls, ATTACK_CALLS)
    assert leaked(body) == [], body["submission"]["stdout"]
    assert body["submission"]["status"] == "passed", body["submission"]["results"]
    assert "args 1 2 memory []" in body["submission"]["stdout"]

    program_visible = [{"name": "two", "stdin": "1\n2\n", "expected_stdout": "3"}]
    program_hidden = [{"name": "secret", "stdin": "424242\n313131\n", "expected_stdout": "737373"}]
    programs = await add_exercise(
        embedded_app, language="java", exercise_type="practical", examples=program_visible,
        tests=program_visible + program_hidden, solution=ATTACK_PROGRAM, starter_code="public class Solution {}\n",
    )  # fmt: skip
    body = await submit(embedded_client, headers, programs, ATTACK_PROGRAM)
    assert leaked(body) == [], body["submission"]["stdout"]
    assert "stdin 1 2 memory []" in body["submission"]["stdout"]
