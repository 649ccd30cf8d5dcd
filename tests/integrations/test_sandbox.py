"""The code sandbox for real: bubblewrap on this machine, the no-namespace fallback, and the Piston adapter.

Containment tests run hostile submissions and check two things: the run ends in a graded RunResult
within its timeout, and the host is unharmed (no process of a sandbox uid left, no connection made, no
secret or host file in the result, a normal run still passes afterwards).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from importlib.util import MAGIC_NUMBER
from pathlib import Path

import pytest

from backend.integrations.sandbox import (
    LocalSandbox,
    PistonSandbox,
    RunnerSandbox,
    RunResult,
    Sandbox,
    SandboxUnavailable,
    create_sandbox,
)
from backend.integrations.sandbox.analysis import TOO_DEEP
from backend.integrations.sandbox.base import Report, build_job, grade
from backend.integrations.sandbox.commands import PYTHON, harness_files
from tests.conftest import make_settings
from tests.fakes.piston import FakePiston

HAS_BWRAP = shutil.which("bwrap") is not None
IS_ROOT = os.geteuid() == 0
TIMEOUT = 1.5
GRACE = 1.0  # what a run may take beyond its timeout: killing, reaping, grading
CONCURRENCY = 4

ADD = "def add(a, b):\n    return a + b\n"
ADD_TESTS = [{"name": f"add {i}", "call": f"add({i}, 2)", "expected": str(i + 2)} for i in range(6)] + [
    {"name": "setup", "setup": "x = [1, 2]", "call": "add(*x)", "expected": "3"},
    {"name": "lists", "call": "add([1], [2])", "expected": "[1, 2]"},
]
SUM_PROGRAM = "a = int(input())\nb = int(input())\nprint(a + b, '  ')\n"
SUM_TESTS = [
    {"name": "small", "stdin": "3\n4\n", "expected_stdout": "7\n"},
    {"name": "negative", "stdin": "-3\n1\n", "expected_stdout": "-2"},
]

requires_bwrap = pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap (bwrap) is not installed")
requires_root = pytest.mark.skipif(not IS_ROOT, reason="per-slot uids need root")


@pytest.fixture(scope="module")
def isolated() -> LocalSandbox:
    if not HAS_BWRAP:
        pytest.skip("bubblewrap (bwrap) is not installed")
    return LocalSandbox(timeout_seconds=TIMEOUT, memory_mb=512, max_concurrency=CONCURRENCY, use_isolation=True)


@pytest.fixture(scope="module")
def fallback() -> LocalSandbox:
    return LocalSandbox(timeout_seconds=TIMEOUT, memory_mb=512, max_concurrency=CONCURRENCY, use_isolation=False)


@pytest.fixture(params=["isolated", "fallback"])
def sandbox(request: pytest.FixtureRequest) -> LocalSandbox:
    """Each containment test on both local variants: the fallback must keep the same limits."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A host directory the fallback's sandbox uid can write to (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="sandbox-test-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def sandbox_processes(owned: frozenset[int]) -> list[int]:
    """Pids of live processes running as one of `uids` (other test runs may use other sandbox uids)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        uid_line = next((line for line in status.splitlines() if line.startswith("Uid:")), "")
        state_line = next((line for line in status.splitlines() if line.startswith("State:")), "")
        ids = [int(value) for value in uid_line.split()[1:]]
        if any(uid in owned for uid in ids) and "Z" not in state_line.split()[1:2]:
            pids.append(int(entry))
    return pids


async def assert_no_sandbox_processes(sandbox: LocalSandbox) -> None:
    assert sandbox.claimed_uids or not IS_ROOT
    for _ in range(20):  # SIGKILLed processes take a moment to disappear
        if not (left := sandbox_processes(sandbox.claimed_uids)):
            return
        await asyncio.sleep(0.05)
    assert left == [], f"sandbox processes survived the run: {[describe(pid) for pid in left]}"


def describe(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"{pid} (gone)"
    fields = [line for line in status if line.startswith(("State:", "Uid:", "PPid:"))]
    return f"{pid} {fields} {cmdline}"


async def assert_still_healthy(sandbox: Sandbox) -> None:
    result = await sandbox.run(ADD, ADD_TESTS)
    assert result.status == "passed", result


def everything(result: RunResult) -> str:
    return repr(result)


# --- grading -----------------------------------------------------------------------------------------


async def test_run_correct_solution_passes(sandbox: LocalSandbox) -> None:
    result = await sandbox.run(ADD + "print('hello')\n", ADD_TESTS)
    assert result.status == "passed", result
    assert (result.tests_passed, result.tests_total) == (8, 8)
    assert result.results[0].message == "ok" and result.results[0].input == "add(0, 2)"
    assert result.results[-1].actual == "[1, 2]" and result.results[-1].expected == "[1, 2]"
    assert result.results[6].input == "x = [1, 2]\nadd(*x)"
    assert "hello" in result.stdout
    assert 0 < result.duration_ms < TIMEOUT * 1000


async def test_run_wrong_solution_fails_with_messages(isolated: LocalSandbox) -> None:
    code = "def add(a, b):\n    if a == 0:\n        return 1 / a\n    return a - b\n"
    result = await isolated.run(code, ADD_TESTS)
    assert result.status == "failed"
    assert (result.tests_passed, result.tests_total) == (0, 8)
    assert result.results[0].message == "ZeroDivisionError: division by zero"
    assert result.results[1].message == "expected 3, got -1"
    assert (result.results[1].expected, result.results[1].actual) == ("3", "-1")
    assert result.results[-1].message.startswith("TypeError: unsupported operand")


async def test_run_program_tests_compare_stdout_ignoring_trailing_whitespace(isolated: LocalSandbox) -> None:
    result = await isolated.run(SUM_PROGRAM, SUM_TESTS)
    assert result.status == "passed", result
    wrong = await isolated.run("print(int(input()) * 2)\n", SUM_TESTS)
    assert wrong.status == "failed" and wrong.tests_passed == 0
    assert wrong.results[0].message == "line 1: expected '7', got '6'"
    assert wrong.results[0].input == "3\n4\n" and wrong.results[0].actual == "6\n"
    crash = await isolated.run("print(1 // 0)\n", SUM_TESTS[:1])
    assert crash.results[0].message == "ZeroDivisionError: integer division or modulo by zero"


async def test_run_syntax_error_is_error_with_line(isolated: LocalSandbox) -> None:
    result = await isolated.run("def add(a, b):\n    return a +\n", ADD_TESTS)
    assert result.status == "error" and result.error_line == 2
    assert result.tests_passed == 0 and result.results[0].message.startswith("SyntaxError")


async def test_run_crash_at_import_is_error(isolated: LocalSandbox) -> None:
    result = await isolated.run("import nonexistent_module\n" + ADD, ADD_TESTS)
    assert result.status == "error"
    assert result.results[0].message == "ModuleNotFoundError: No module named 'nonexistent_module'"
    assert "Traceback" in result.stderr


async def test_run_values_that_lie_about_equality_fail(isolated: LocalSandbox) -> None:
    code = (
        "class Anything:\n    def __eq__(self, other):\n        return True\n"
        "class Int(int):\n    def __eq__(self, other):\n        return True\n"
        "def add(a, b):\n    return Anything() if a % 2 else Int(a + b + 1)\n"
    )
    result = await isolated.run(code, ADD_TESTS[:6])
    assert result.status == "failed" and result.tests_passed == 0
    assert "Anything object" in (result.results[1].actual or "")


# --- containment ---------------------------------------------------------------------------------------


async def test_run_infinite_loop_times_out_and_keeps_earlier_results(sandbox: LocalSandbox) -> None:
    code = ADD + "def spin():\n    while True:\n        pass\n"
    tests = [ADD_TESTS[0], {"name": "spin", "call": "spin()", "expected": "None"}]
    started = time.monotonic()
    result = await sandbox.run(code, tests)
    assert time.monotonic() - started < TIMEOUT + GRACE
    assert result.status == "timeout"
    assert result.results[0].passed and result.results[1].message == "timed out"
    await assert_no_sandbox_processes(sandbox)


async def test_run_fork_bomb_is_contained(sandbox: LocalSandbox) -> None:
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n" + ADD
    started = time.monotonic()
    result = await sandbox.run(code, ADD_TESTS)
    assert time.monotonic() - started < TIMEOUT + GRACE
    assert result.status in ("timeout", "error") and result.tests_passed == 0
    await assert_no_sandbox_processes(sandbox)
    await assert_still_healthy(sandbox)


async def test_run_huge_allocation_is_memory_error(sandbox: LocalSandbox) -> None:
    code = "def grab():\n    return len(bytearray(4 * 1024 ** 3))\n"
    result = await sandbox.run(code, [{"name": "4 GB", "call": "grab()", "expected": "0"}])
    assert result.status == "failed" and result.results[0].message == "MemoryError"


async def test_run_huge_file_is_refused(sandbox: LocalSandbox, shared_dir: Path) -> None:
    code = (
        "import os\ndef fill(path):\n    with open(path, 'wb') as f:\n"
        "        for _ in range(1024):\n            f.write(b'x' * 1024 * 1024)\n    return os.path.getsize(path)\n"
    )
    target = "/tmp/big" if sandbox.is_isolated else str(shared_dir / "big")  # noqa: S108 - the sandbox's own tmpfs
    result = await sandbox.run(code, [{"name": "1 GB", "call": f"fill({target!r})", "expected": "0"}])
    assert result.status == "failed"
    assert "File too large" in result.results[0].message
    if not sandbox.is_isolated:
        assert (shared_dir / "big").stat().st_size <= 8 * 1024 * 1024
    await assert_no_sandbox_processes(sandbox)


async def test_run_detached_grandchild_is_gone_after_the_run(sandbox: LocalSandbox, shared_dir: Path) -> None:
    """A grandchild that leaves the session and outlives its parent must not outlive the run."""
    marker = "/tmp/marker" if sandbox.is_isolated else str(shared_dir / "marker")  # noqa: S108
    code = (
        "import os, time\n"
        "def escape():\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(0.8)\n"
        f"            open({marker!r}, 'w').write('alive')\n"
        "            time.sleep(60)\n"
        "        os._exit(0)\n"
        "    return 1\n"
    )
    result = await sandbox.run(code, [{"name": "escape", "call": "escape()", "expected": "1"}])
    assert result.status == "passed", result
    await assert_no_sandbox_processes(sandbox)
    await asyncio.sleep(1.0)
    assert not (shared_dir / "marker").exists()
    await assert_no_sandbox_processes(sandbox)


async def test_run_child_runs_the_precompiled_program(sandbox: LocalSandbox) -> None:
    """The submission runs in an interpreter started on the runner's child.pyc (no source to compile at every
    run, none on its command line), in a job dir holding the precompiled harness, never its source."""
    code = (
        "import os\n"
        "def argv():\n"
        "    args = open('/proc/self/cmdline', 'rb').read().decode().split('\\0')[1:-1]\n"
        "    return [os.path.basename(arg) for arg in args]\n"
        "def files():\n    return sorted(os.listdir('.'))\n"
        "if __name__ == '__main__':\n    print(argv())\n"
    )
    tests = [
        {"name": "argv", "call": "argv()", "expected": "['-I', '-S', 'child.pyc', 'call']"},
        {"name": "files", "call": "files()", "expected": "['child.pyc', 'harness.pyc', 'main.py']"},
        {"name": "program", "stdin": "", "expected_stdout": "['-I', '-S', 'child.pyc', 'program']"},
    ]
    result = await sandbox.run(code, tests)
    assert result.status == "passed", result.results


async def test_run_cannot_reach_the_harness_through_proc(sandbox: LocalSandbox) -> None:
    """The harness, the child's parent, holds every test: it makes itself non-dumpable, so the submission,
    though it runs as the same uid, can read neither its memory, its environment nor its descriptors."""
    code = (
        "import os\n"
        "def peek(name):\n"
        "    path = f'/proc/{os.getppid()}/{name}'\n"
        "    try:\n"
        "        os.listdir(path) if name == 'fd' else open(path, 'rb').read(1)\n"
        "    except OSError as error:\n"
        "        return type(error).__name__\n"
        "    return 'read'\n"
    )
    names = ("mem", "environ", "fd")
    tests = [{"name": name, "call": f"peek({name!r})", "expected": "'PermissionError'"} for name in names]
    result = await sandbox.run(code, tests)
    assert result.status == "passed", result.results


async def test_run_python_style_is_the_runners_own_and_leads_the_report(sandbox: LocalSandbox) -> None:
    """pyflakes and the static measures of a Python submission are computed by the runner (analysis.py)
    and sent before anything the run writes, so the first `style` event, the one graded, is never the
    submission's: printing one, or one per test, changes nothing. A resubmitted source is not parsed again."""
    forged = "import json\nprint(json.dumps({'event': 'style', 'findings': [], 'quality': {'score': 1}}))\n"
    code = "import os\n" + forged + "def add(a, b):\n    Total = a + b\n    return Total\n"
    result = await sandbox.run(code, ADD_TESTS)
    assert result.status == "passed", result
    assert result.style == ["line 1: 'os' imported but unused"]
    assert result.quality == {"score": 0.917, "long_functions": [], "deep_functions": [], "poor_names": ["Total"]}
    cached = len(sandbox.styles._events)
    again = await sandbox.run(code, ADD_TESTS)
    assert (again.style, again.quality, len(sandbox.styles._events)) == (result.style, result.quality, cached)
    deep = await sandbox.run("def add(a, b):\n    return " + "1 + " * 12000 + "a + b\n", ADD_TESTS)
    assert deep.style == [TOO_DEEP] and deep.quality is not None and deep.quality["score"] == 0.0


CREDENTIALS = """
def credentials():
    status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines() if ':' in line)
    fields = ('Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs')
    found = {name: status[name].split() for name in fields}
    limits = {}
    for line in open('/proc/self/limits').read().splitlines()[1:]:
        name, soft, hard = line[:26].strip(), line[26:47].strip(), line[47:68].strip()
        limits[name] = (soft, hard)
    found['limits'] = limits
    return found
"""


@requires_root
async def test_run_code_holds_its_slots_uid_no_group_and_no_capability(sandbox: LocalSandbox) -> None:
    """What the uid switch in front of every run (confinement.switch_uid) must give the submitted code: the
    slot's own uid as real, effective, saved and filesystem uid, the same gid, no supplementary group, no
    capability at all, and the run's rlimits, soft and hard (nothing can raise them again). Under bubblewrap
    also an empty bounding set and no_new_privs (bwrap's --cap-drop ALL and its seccomp filter)."""
    groups = os.getgroups()
    os.setgroups([4242])  # a supplementary group of the runner's own, which the run must not inherit
    try:
        result = await sandbox.run(CREDENTIALS, [{"name": "credentials", "call": "credentials()", "expected": "0"}])
    finally:
        os.setgroups(groups)
    found = ast.literal_eval(result.results[0].actual or "")
    uids = {int(value) for value in found["Uid"]}
    assert len(uids) == 1 and uids <= sandbox.claimed_uids, found["Uid"]
    assert [int(value) for value in found["Gid"]] == [*uids] * 4
    assert found["Groups"] == []
    for name in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(found[name][0], 16) == 0, (name, found[name])
    if sandbox.is_isolated:
        assert int(found["CapBnd"][0], 16) == 0 and found["NoNewPrivs"] == ["1"]
    limits, expected = found["limits"], sandbox.limits
    for name, value in (
        ("Max address space", expected.process_bytes),
        ("Max processes", 6),
        ("Max file size", 8 * 1024 * 1024),
        ("Max open files", 64),
        ("Max core file size", 0),
        ("Max msgqueue size", 0),
    ):
        assert limits[name] == (str(value), str(value)), (name, limits[name])
    assert limits["Max cpu time"][0] == limits["Max cpu time"][1] != "unlimited"


def test_harness_is_precompiled_by_the_sandbox_interpreter() -> None:
    """A runner on another Python than the sandbox's still grades: the .pyc files are compiled by the
    sandbox's interpreter (its magic number, not the runner's), which runs them."""
    python = other_python()
    if python is None:
        pytest.skip("no Python of another minor version installed")
    harness = harness_files(python)
    magic = subprocess.run(
        [python, "-c", "import importlib.util, sys; sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER)"],
        capture_output=True,
        check=True,
    ).stdout
    assert harness.main == "harness.pyc" and harness.python == python
    tests = [*ADD_TESTS, {"name": "as a program", "stdin": "", "expected_stdout": ""}]  # both kinds of child
    assert harness.files["harness.pyc"][:4] == harness.files["child.pyc"][:4] == magic != MAGIC_NUMBER
    with tempfile.TemporaryDirectory() as directory:
        for name, content in harness.files.items():
            assert isinstance(content, bytes)
            (Path(directory) / name).write_bytes(content)
        done = subprocess.run(
            [python, "-I", "-S", str(Path(directory) / "harness.pyc")],
            input=build_job(ADD, tests).encode(),
            capture_output=True,
            timeout=30,
        )
    result = grade(tests, Report.parse(done.stdout.splitlines()), duration_ms=0.0, is_timeout=False)
    assert result.status == "passed", (result.results, done.stderr[-500:])


def other_python() -> str | None:
    """An installed interpreter (3.10 on, as the harness needs) of another minor version than the sandbox's:
    its real path, not a shim."""
    sandbox_version = subprocess.run([PYTHON, "-c", "import sys; print(sys.version_info[1])"], capture_output=True)
    candidates = [shutil.which(f"python3.{minor}") for minor in range(10, 15)]
    candidates += sorted(str(path) for path in Path.home().glob(".pyenv/versions/3.1[0-9]*/bin/python3"))
    for candidate in candidates:
        if candidate is None:
            continue
        found = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[1]); print(sys.executable)"],
            capture_output=True,
            text=True,
        )
        lines = found.stdout.split()
        if found.returncode == 0 and len(lines) == 2 and lines[0] != sandbox_version.stdout.decode().strip():
            return lines[1]
    return None


async def test_run_never_sees_the_server_environment(sandbox: LocalSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-server-secret-" + os.urandom(8).hex()
    monkeypatch.setenv("SECRET_KEY", secret)
    code = (
        "import os\n"
        "def env():\n    return dict(os.environ)\n"
        "def proc(pid):\n    return open(f'/proc/{pid}/environ', 'rb').read().decode()\n"
        "print(os.environ)\n"
    )
    tests = [
        {"name": "env", "call": "env()", "expected": "{}"},
        {"name": "self", "call": "proc('self')", "expected": "''"},
        {"name": "parent", "call": "proc(os.getppid())", "expected": "''"},
        {"name": "init", "call": "proc(1)", "expected": "''"},
        {"name": "server", "call": f"proc({os.getpid()})", "expected": "''"},
    ]
    result = await sandbox.run(code, tests)
    assert secret not in everything(result)
    # Empty but for what bwrap (PWD) and Python's locale coercion (LC_CTYPE) set inside the sandbox.
    assert set(ast.literal_eval(result.results[0].actual or "{}")) <= {"PWD", "LC_CTYPE"}


@requires_bwrap
async def test_run_cannot_read_files_outside_its_dir(isolated: LocalSandbox) -> None:
    code = "import os\ndef read(path):\n    return open(path).read()\ndef ls(path):\n    return os.listdir(path)\n"
    paths = ["/etc/passwd", "/etc/shadow", str(Path(__file__).parents[2] / "backend" / "config.py"), "/root/.bashrc"]
    tests = [{"name": path, "call": f"read({path!r})", "expected": "''"} for path in paths]
    tests.append({"name": "ls root", "call": "ls('/root')", "expected": "[]"})
    tests.append({"name": "ls /", "call": "sorted(ls('/'))", "expected": "[]"})
    result = await isolated.run(code, tests)
    assert result.tests_passed == 0
    for outcome in result.results[:5]:
        assert outcome.message.startswith("FileNotFoundError"), outcome
    assert "root:" not in everything(result) and "SECRET_KEY" not in everything(result)
    assert "'work'" not in (result.results[-1].actual or "") and "'etc'" not in (result.results[-1].actual or "")


@requires_bwrap
async def test_run_cannot_open_a_socket_to_a_host_port(isolated: LocalSandbox) -> None:
    connections = 0

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    code = (
        "import socket\n"
        "def connect(port):\n    socket.create_connection(('127.0.0.1', port), timeout=1)\n    return 1\n"
    )
    try:
        result = await isolated.run(code, [{"name": "connect", "call": f"connect({port})", "expected": "1"}])
    finally:
        server.close()
        await server.wait_closed()
    assert result.status == "failed" and connections == 0
    assert result.results[0].message.startswith(("ConnectionRefusedError", "OSError"))


async def test_run_fake_reports_cannot_make_a_wrong_solution_pass(sandbox: LocalSandbox) -> None:
    """Fake "all passed" reports on stdout/stderr, on every inherited descriptor and on the harness's
    descriptors through /proc: the wrong answers are still wrong (the server compares, not the sandbox)."""
    code = (
        "import json, os, sys\n"
        "CLAIMS = [{'event': 'call', 'index': i, 'value': ['str', 'passed'], 'passed': True} for i in range(9)]\n"
        "CLAIMS += [{'event': 'program', 'index': i, 'stdout': 'ok', 'passed': True} for i in range(9)]\n"
        "CLAIMS += [{'event': 'done'}, {'status': 'passed', 'tests_passed': 8, 'tests_total': 8}]\n"
        "FAKE = ''.join(json.dumps(claim) + '\\n' for claim in CLAIMS)\n"
        "def forge():\n"
        "    print(FAKE)\n"
        "    print(FAKE, file=sys.stderr)\n"
        "    for fd in range(3, 64):\n"
        "        try:\n"
        "            os.write(fd, FAKE.encode())\n"
        "        except OSError:\n"
        "            pass\n"
        "    for pid in {os.getppid(), 1, 2}:\n"
        "        for fd in range(64):\n"
        "            try:\n"
        "                f = os.open(f'/proc/{pid}/fd/{fd}', os.O_WRONLY)\n"
        "                os.write(f, FAKE.encode())\n"
        "            except OSError:\n"
        "                pass\n"
        "forge()\n"
        "def add(a, b):\n    return a - b\n"
    )
    result = await sandbox.run(code, ADD_TESTS)
    assert result.status in ("failed", "error")
    assert result.tests_passed == 0
    program = await sandbox.run(code + "forge()\n", SUM_TESTS)
    assert program.tests_passed == 0


# --- concurrency, fallback, failures -------------------------------------------------------------------


async def test_run_burst_queues_at_the_concurrency_limit() -> None:
    sandbox = LocalSandbox(timeout_seconds=5, memory_mb=512, max_concurrency=1)
    code = "import time\ntime.sleep(0.4)\n" + ADD
    started = time.monotonic()
    results = await asyncio.gather(*(sandbox.run(code, ADD_TESTS[:1]) for _ in range(3)))
    elapsed = time.monotonic() - started
    assert [result.status for result in results] == ["passed"] * 3
    assert elapsed >= 3 * 0.4
    assert max(result.duration_ms for result in results) < 1000  # each ran alone; the wait was a queue


async def test_run_broken_bwrap_is_sandbox_unavailable(tmp_path: Path) -> None:
    sandbox = LocalSandbox(timeout_seconds=2, memory_mb=512, max_concurrency=1)
    broken = tmp_path / "bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    broken.chmod(0o755)
    sandbox.bwrap, sandbox.is_isolated = str(broken), True
    with pytest.raises(SandboxUnavailable):
        await sandbox.run(ADD, ADD_TESTS)


@requires_root
async def test_run_whose_bwrap_dies_early_leaves_nothing_and_never_hangs(shared_dir: Path) -> None:
    """bwrap killed before its child set PR_SET_PDEATHSIG (seen under load): the child survives, detached,
    holding the run's pipes. It is killed through the slot's uid instead of waited for."""
    sandbox = LocalSandbox(timeout_seconds=2, memory_mb=512, max_concurrency=1)
    dying = shared_dir / "bwrap"
    dying.write_text("#!/bin/sh\nsetsid sleep 60 &\nexit 1\n")  # the survivor inherits stdout and stderr
    dying.chmod(0o755)
    sandbox.bwrap, sandbox.is_isolated = str(dying), True
    started = time.monotonic()
    with contextlib.suppress(SandboxUnavailable):  # or a graded timeout: the survivor held the pipes open
        result = await sandbox.run(ADD, ADD_TESTS)
        assert result.status == "timeout" and result.tests_passed == 0
    assert time.monotonic() - started < 2 + GRACE
    await assert_no_sandbox_processes(sandbox)


def test_create_sandbox_follows_settings() -> None:
    local = create_sandbox(make_settings(sandbox_max_concurrency=2))
    assert isinstance(local, RunnerSandbox) and local.url is not None  # the API never runs code itself
    piston = create_sandbox(make_settings(sandbox_backend="piston", piston_url="http://127.0.0.1:1"))
    assert isinstance(piston, PistonSandbox) and piston.backend == "piston"


# --- Piston --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def piston_server() -> AsyncIterator[FakePiston]:
    fake = FakePiston()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def piston(piston_server: FakePiston) -> AsyncIterator[PistonSandbox]:
    piston_server.reset()
    sandbox = PistonSandbox(piston_server.base_url, timeout_seconds=TIMEOUT, memory_mb=512, max_concurrency=2)
    yield sandbox
    await sandbox.close()


async def test_piston_grades_like_the_local_sandbox(piston: PistonSandbox, piston_server: FakePiston) -> None:
    passed = await piston.run(ADD + "print('hi')\n", ADD_TESTS + SUM_TESTS[:0])
    assert passed.status == "passed" and passed.tests_passed == 8 and "hi" in passed.stdout
    program = await piston.run(SUM_PROGRAM, SUM_TESTS)
    assert program.status == "passed"
    wrong = await piston.run("def add(a, b):\n    return a - b\n", ADD_TESTS)
    assert wrong.status == "failed" and wrong.results[1].message == "expected 3, got -1"
    syntax = await piston.run("def add(:\n", ADD_TESTS)
    assert syntax.status == "error" and syntax.error_line == 1
    body = piston_server.requests[0]
    assert body["language"] == "python" and body["files"][0]["name"] == "main.py"
    assert body["run_timeout"] == int(TIMEOUT * 1000)
    assert '"expected"' not in body["stdin"] and "expected_stdout" not in body["stdin"]


async def test_piston_fake_report_on_stdout_cannot_pass(piston: PistonSandbox) -> None:
    code = 'print(\'{"event": "call", "index": 0, "value": ["int", "2"]}\')\ndef add(a, b):\n    return 0\n'
    result = await piston.run(code, ADD_TESTS)
    assert result.tests_passed == 0


async def test_piston_timeout(piston: PistonSandbox, piston_server: FakePiston) -> None:
    result = await piston.run("while True:\n    pass\n", ADD_TESTS[:1], timeout_seconds=0.5)
    assert result.status == "timeout"
    leftovers = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            if entry.isdigit() and os.readlink(f"/proc/{entry}/cwd").startswith(tuple(piston_server.directories)):
                leftovers.append(describe(int(entry)))
    assert leftovers == []


async def test_piston_down_or_failing_is_sandbox_unavailable(piston_server: FakePiston) -> None:
    down = PistonSandbox("http://127.0.0.1:1", timeout_seconds=1, memory_mb=512, max_concurrency=1)
    with pytest.raises(SandboxUnavailable):
        await down.run(ADD, ADD_TESTS)
    await down.close()
    piston_server.reset()
    piston_server.fail["execute"] = 500
    failing = PistonSandbox(piston_server.base_url, timeout_seconds=1, memory_mb=512, max_concurrency=1)
    with pytest.raises(SandboxUnavailable):
        await failing.run(ADD, ADD_TESTS)
    await failing.close()
    piston_server.reset()


async def test_run_reports_values_too_large_or_unprintable(isolated: LocalSandbox) -> None:
    code = "def big():\n    return list(range(10 ** 6))\ndef huge_int():\n    return 10 ** 5000\n"
    tests = [
        {"name": "big", "call": "big()", "expected": "[]"},
        {"name": "huge", "call": "huge_int()", "expected": "1"},
        {"name": "bad test", "call": "1", "expected": "float('inf')"},
    ]
    result = await isolated.run(code, tests)
    assert result.status == "failed"
    assert result.results[0].message == "the returned value is too large to compare"
    assert result.results[1].message == "expected 1, got an int too large to compare"
    assert result.results[2].message == "invalid test: expected is not a Python literal"


async def test_run_killing_the_harness_is_never_a_pass(sandbox: LocalSandbox) -> None:
    code = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\ndef add(a, b):\n    return 0\n"
    result = await sandbox.run(code, ADD_TESTS)
    assert result.tests_passed == 0
    # Under bwrap the harness is the PID namespace's init, which nothing inside may kill.
    assert result.status == ("failed" if sandbox.is_isolated else "error")
    await assert_no_sandbox_processes(sandbox)


async def test_run_code_that_exits_mid_tests_fails_the_rest(isolated: LocalSandbox) -> None:
    code = "import os\ndef add(a, b):\n    if a == 1:\n        os._exit(0)\n    return a + b\n"
    result = await isolated.run(code, ADD_TESTS[:3])
    assert result.status == "failed" and result.tests_passed == 1
    assert result.results[1].message == "no result: the program exited before this test finished"


# --- hidden tests stay hidden: one test at a time, output per test ----------------------------------------


async def test_run_output_is_attributed_to_the_test_that_printed_it(isolated: LocalSandbox) -> None:
    code = "import sys\nprint('importing')\n" + ADD.replace(
        "    return", "    print('add', a, b)\n    print('err', a, file=sys.stderr)\n    return"
    )
    result = await isolated.run(code, ADD_TESTS[:2] + SUM_TESTS[:1])
    assert result.order == (0, 1, 2)
    assert result.output[None] == ("importing\n", "")
    assert result.output[0] == ("add 0 2\n", "err 0\n") and result.output[1] == ("add 1 2\n", "err 1\n")
    assert result.output[2][0].startswith("importing\n")  # a program test prints as a whole script
    assert result.output_of({1}) == ("importing\nadd 1 2\n", "err 1\n")
    assert "add 0 2" in result.stdout  # everything, for callers whose tests are not secret


async def test_run_program_test_holds_no_other_test_input(isolated: LocalSandbox) -> None:
    """Each program test runs in a fresh interpreter: scanning every object finds its own stdin only."""
    code = (
        "import gc, sys\n"
        "def collect(value, found, depth=0):\n"
        "    if isinstance(value, str) and value.startswith('marker-') and value != 'marker-':\n"
        "        found.add(value.strip())\n"
        "    elif depth < 6 and isinstance(value, (dict, list, tuple, set, frozenset)):\n"
        "        for item in list(value.items()) if isinstance(value, dict) else list(value):\n"
        "            collect(item, found, depth + 1)\n"
        "seen = {input()}\n"
        "frame = sys._getframe()\n"
        "while frame is not None:\n"
        "    collect(dict(frame.f_locals), seen)\n"
        "    frame = frame.f_back\n"
        "for holder in gc.get_objects():\n"
        "    collect(holder, seen, 5)\n"
        "print(sorted(seen))\n"
    )
    tests = [{"name": f"p{k}", "stdin": f"marker-{k}\n", "expected_stdout": f"['marker-{k}']"} for k in range(3)]
    result = await isolated.run(code, tests)
    assert result.status == "passed", [outcome.actual for outcome in result.results]


async def test_run_program_test_stdin_comes_whole_through_a_pipe(isolated: LocalSandbox) -> None:
    """Stdin is a pipe grown to fit (memfd is refused in the sandbox): an exercise's largest input (50,000
    characters, 150 KB here: over a pipe's default 64 KiB) arrives whole; one larger than any pipe may hold
    fails with a message that says so, and the next test still runs."""
    code = "import sys\nprint(len(sys.stdin.read()))\n"
    tests = [
        {"name": "largest", "stdin": "\u20ac" * 50_000, "expected_stdout": "50000"},
        {"name": "too large", "stdin": "x" * 2 * 1024 * 1024, "expected_stdout": str(2 * 1024 * 1024)},
        {"name": "small", "stdin": "abc", "expected_stdout": "3"},
    ]
    result = await isolated.run(code, tests)
    largest, too_large, small = result.results
    assert largest.passed and small.passed, result.results
    assert not too_large.passed and "larger than the sandbox's stdin pipe can hold" in too_large.message


async def test_run_failures_name_only_builtin_exceptions(isolated: LocalSandbox) -> None:
    code = (
        "def add(a, b):\n"
        "    if a == 0:\n        return 1 / a\n"
        "    if a == 1:\n        raise type(f'Secret{b}Error', (Exception,), {})(b)\n"
        "    return a - b\n"
    )
    crash = {"name": "crash", "stdin": "", "expected_stdout": "x"}
    result = await isolated.run(code + "if __name__ == '__main__':\n    input()\n", [*ADD_TESTS[:3], crash])
    failures = [outcome.failure for outcome in result.results]
    assert failures == ["raised ZeroDivisionError", "raised an exception", "different result", "raised EOFError"]
    assert result.results[1].message == "Secret2Error: 2"  # the full text, for a visible example only
