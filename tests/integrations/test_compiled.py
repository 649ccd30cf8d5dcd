"""Compiled toolchains in the runner: compile-if-not-cached then run in one job, the artifact cache, errors.

Through the session's real runner process where the runner's own behaviour is the point (a cache hit
compiles nothing: its status counts compiles; a compile error's line), and through an in-process
`LocalSandbox` with a toolchain of the test's own for what no real compiler does on demand (a compile that
never ends). The cache's bounds and its single compile per key are checked on `ArtifactCache` itself.
Go is the compiled language every machine of ours has (Debian's golang-go); under CI=true it must be there.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend.integrations.sandbox import LocalSandbox, RunnerSandbox
from backend.integrations.sandbox.compiled import Artifact, ArtifactCache, compile_error
from backend.integrations.sandbox.languages import LanguageGrader
from backend.integrations.sandbox.languages.go import GO
from backend.integrations.sandbox.languages.toolchains import TOOLCHAINS, Compile, Toolchain
from backend.integrations.sandbox.protocol import Job
from tests.runners import shared_runner_url

ADD = "package main\n\nfunc add(a int, b int) int {\n\treturn a + b\n}\n"
CASES = [{"name": "adds", "function": "add", "args": "[1, 2]", "expected": "3"}]


def _require_go() -> None:
    missing = [what for what, ok in (("bwrap", shutil.which("bwrap")), ("go", GO.available)) if not ok]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must grade Go, but {missing} is not installed")
        pytest.skip(f"{missing} not installed")


@pytest.fixture(scope="module")
async def runner() -> AsyncIterator[RunnerSandbox]:
    _require_go()
    client = RunnerSandbox(shared_runner_url(), timeout_seconds=10, queue_timeout_seconds=300)
    yield client
    await client.close()


def go_job(code: str, cases: list[dict] = CASES) -> Job:
    stdin = GO.run_stdin(cases, output_cap=65536, test_timeout_ms=2000)
    return Job("go", GO.files(code, cases), stdin, 10, 300, f"compiled:{uuid.uuid4().hex}")


async def compiles(runner: RunnerSandbox) -> int:
    return int((await runner.status())["artifacts"]["compiles"])


async def test_a_cached_artifact_is_not_compiled_again(runner: RunnerSandbox) -> None:
    code = ADD + f"\n// {uuid.uuid4().hex}\n"  # a source no other test compiled
    before = await compiles(runner)
    first = await runner.execute(go_job(code))
    assert first.compile_ms is not None and first.compile_ms > 0
    after_first = await compiles(runner)
    assert after_first - before in (1, 2)  # this source, and the harness when this runner had not yet
    second, third = await asyncio.gather(runner.execute(go_job(code)), runner.execute(go_job(code)))
    assert second.compile_ms is None and third.compile_ms is None
    assert await compiles(runner) == after_first
    assert '"event": "call"' in second.report.replace('"event":"call"', '"event": "call"')
    # Other files for the same submission (another exercise's dispatch) are another artifact.
    other = [{"name": "adds", "function": "add", "args": "[2, 2]", "expected": "4"}]
    assert (await runner.execute(go_job(code, other))).compile_ms is None  # same files: the args are stdin
    assert (await runner.execute(go_job(code + "\n", other))).compile_ms is not None


async def test_compile_error_is_a_syntax_error_with_the_submissions_line(runner: RunnerSandbox) -> None:
    grader = LanguageGrader(runner, timeout_seconds=10, queue_timeout_seconds=300)
    broken = ADD.replace("return a + b", "return a +")
    result = await grader.grade(GO, broken, CASES)
    assert result.status == "error"
    assert result.error_line == 5
    assert result.stderr.startswith("solution.go:5: syntax error")
    assert "/job" not in result.stderr and "/tmp/" not in result.stderr  # noqa: S108 - a sandbox path never shown
    # The same broken source again: the cached error, nothing compiled.
    before = await compiles(runner)
    assert (await grader.grade(GO, broken, CASES)).error_line == 5
    assert await compiles(runner) == before
    # An error outside the submission's file (here: the function the tests call is missing) has no line.
    missing = await grader.grade(GO, "package main\n\nfunc plus(a, b int) int { return a + b }\n", CASES)
    assert missing.status == "error" and missing.error_line is None
    assert "undefined: add" in missing.stderr and "dispatch.go" not in missing.stderr


async def test_status_reports_the_artifact_cache(runner: RunnerSandbox) -> None:
    artifacts = (await runner.status())["artifacts"]
    assert set(artifacts) == {"entries", "bytes", "hits", "misses", "compiles", "evictions"}


# --- a compile that never ends ---------------------------------------------------------------------


@pytest.fixture
async def slow_compiler(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalSandbox]:
    """A toolchain of this test's own whose compile waits forever (with a 1-second limit)."""
    if not shutil.which("bwrap"):
        if os.environ.get("CI") == "true":
            pytest.fail("CI must have bubblewrap")
        pytest.skip("bubblewrap not installed")
    toolchain = Toolchain(
        name="test-slow-compile",
        files={},
        command=("/job/build/never",),
        address_space_bytes=1 << 30,
        max_processes=8,
        compile=Compile(
            command=("/bin/sh", "-c", "while :; do :; done"),
            prepare=None,
            source="main.txt",
            error=re.compile(r"(?P<file>x)(?P<line>1)(?P<message>x)"),
            identity=("/bin/sh",),
            timeout_seconds=1.0,
        ),
    )
    monkeypatch.setitem(TOOLCHAINS, toolchain.name, toolchain)
    sandbox = LocalSandbox(timeout_seconds=5, memory_mb=256, max_concurrency=1, use_isolation=True)
    yield sandbox
    await sandbox.close()


async def test_a_compile_over_its_time_limit_is_a_timeout_and_is_not_cached(slow_compiler: LocalSandbox) -> None:
    job = Job("test-slow-compile", {"main.txt": "x"}, "", 5, 5, "slow")
    for attempt in range(2):
        execution = await slow_compiler.execute(job)
        assert execution.timed_out and not execution.clean
        assert "did not finish within 1 s" in execution.diagnostics
        assert execution.compile_ms is not None and 900 < execution.compile_ms < 4000
        assert slow_compiler.artifacts.status()["compiles"] == attempt + 1  # never cached: compiled again
    # The slot is usable afterwards (its uid was cleaned up): a Python run passes.
    result = await slow_compiler.run("def f():\n    return 1\n", [{"name": "f", "call": "f()", "expected": "1"}])
    assert result.status == "passed"


# --- the cache itself --------------------------------------------------------------------------------


def writes(size: int, calls: list[str] | None = None, delay: float = 0.0):
    async def build(staging: Path) -> Artifact:
        if calls is not None:
            calls.append(staging.name)
        await asyncio.sleep(delay)
        (staging / "prog").write_bytes(b"x" * size)
        return Artifact("", staging, None, compile_ms=1.0)

    return build


async def test_cache_is_bounded_and_evicts_the_least_recently_used(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache", max_entries=3, max_bytes=1000)
    for key in ("a", "b", "c"):
        artifact, compiled = await cache.obtain(key, writes(300), max_bytes=1000)
        assert compiled and artifact.path is not None and (artifact.path / "prog").stat().st_size == 300
    assert (await cache.obtain("a", writes(300), max_bytes=1000))[1] is False  # a hit: "a" is now the newest
    await cache.obtain("d", writes(300), max_bytes=1000)  # 1200 bytes: "b", the least recently used, goes
    assert cache.get("b") is None and cache.get("a") is not None
    assert not (tmp_path / "cache" / "b").exists()
    assert cache.status()["bytes"] <= 1000 and cache.status()["evictions"] == 1
    for key in ("e", "f", "g"):
        await cache.obtain(key, writes(10), max_bytes=1000)
    assert cache.status()["entries"] == 3  # the entry bound
    with pytest.raises(Exception, match="files of"):
        await cache.obtain("big", writes(2000), max_bytes=1000)  # more than one artifact may hold
    assert cache.get("big") is None
    cache.close()
    assert not (tmp_path / "cache").exists()


async def test_a_toolchains_prepared_harness_is_evicted_only_when_nothing_else_is_left(tmp_path: Path) -> None:
    """Every compile of a toolchain links against its prepared harness (C++'s precompiled header takes ~6 s
    of CPU to make): other languages' artifacts filling the cache evict theirs first."""
    cache = ArtifactCache(tmp_path / "cache", max_entries=10, max_bytes=1000)
    await cache.obtain("prepare-cpp", writes(400), max_bytes=1000)
    for key in ("a", "b", "c"):
        await cache.obtain(key, writes(300), max_bytes=1000)  # "c" is over the bound: "a" goes, not the harness
    assert cache.get("a") is None and cache.get("prepare-cpp") is not None  # (a hit makes it the newest)
    await cache.obtain("d", writes(300), max_bytes=1000)
    assert cache.get("b") is None and cache.get("c") is not None and cache.get("prepare-cpp") is not None
    assert cache.status()["bytes"] <= 1000 and cache.status()["evictions"] == 2
    await cache.obtain("e", writes(900), max_bytes=1000)  # only the harness is left to evict: it goes too
    assert cache.get("prepare-cpp") is None and cache.get("e") is not None
    cache.close()


async def test_concurrent_jobs_compile_a_key_once_and_a_cancelled_compile_is_retried(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    calls: list[str] = []
    results = await asyncio.gather(*(cache.obtain("k", writes(10, calls, 0.05), max_bytes=100) for _ in range(4)))
    assert len(calls) == 1 and [compiled for _, compiled in results].count(True) == 1
    slow = asyncio.ensure_future(cache.obtain("j", writes(10, calls, 5), max_bytes=100))
    waiting = asyncio.ensure_future(cache.obtain("j", writes(10, calls, 0), max_bytes=100))
    await asyncio.sleep(0.05)
    slow.cancel()  # the job that was compiling went away: the waiting one compiles it itself
    artifact, compiled = await waiting
    assert compiled and artifact.path is not None and len(calls) == 3
    cache.close()


async def test_failed_compiles_are_cached_unless_uncertain(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    go = TOOLCHAINS["go"].compile
    assert go is not None
    error, certain = compile_error(go, "./solution.go:3:7: undefined: x\n./dispatch.go:1:1: more\n", 1)
    assert certain and error == {"event": "syntax_error", "line": 3, "message": "solution.go:3: undefined: x"}
    error, certain = compile_error(go, "", -9)
    assert not certain and error["line"] is None and "stopped" in error["message"]

    def failing(event: dict, is_certain: bool):
        async def build(staging: Path) -> Artifact:
            return Artifact("", None, event, cacheable=is_certain)

        return build

    await cache.obtain("bad", failing({"event": "syntax_error", "line": 1}, True), max_bytes=10)
    assert (await cache.obtain("bad", failing({}, True), max_bytes=10))[0].error == {"event": "syntax_error", "line": 1}
    await cache.obtain("flaky", failing({"event": "syntax_error"}, False), max_bytes=10)
    assert cache.get("flaky") is None
    cache.close()


def test_the_runner_cache_size_is_configurable() -> None:
    from backend.integrations.sandbox.runner import parse_args

    assert parse_args(["--artifact-cache-mb", "64"]).artifact_cache_mb == 64
    assert parse_args([]).artifact_cache_mb == 256


async def test_artifact_directories_are_readable_by_the_run_whatever_the_umask(tmp_path: Path) -> None:
    """`python -m backend` runs under umask 077: the directories of an artifact (Java's harness/codementor/)
    and of its hard-linked copy in a job dir must still be open to the run's uid, or every Java compile ends
    `cp: cannot access 'prepared/harness': Permission denied`."""

    async def nested(staging: Path) -> Artifact:
        (staging / "harness" / "codementor").mkdir(parents=True)
        (staging / "harness" / "codementor" / "Main.class").write_bytes(b"class")
        return Artifact("", staging, None, compile_ms=1.0)

    previous = os.umask(0o077)
    try:
        cache = ArtifactCache(tmp_path / "cache")
        artifact, _ = await cache.obtain("nested", nested, max_bytes=100)
        assert artifact.path is not None
        job = tmp_path / "job"
        job.mkdir()
        cache.link_into(artifact, job)
    finally:
        os.umask(previous)
    for directory in (artifact.path / "harness", artifact.path / "harness" / "codementor", job / "harness"):
        assert directory.stat().st_mode & 0o777 == 0o755, directory
    assert (job / "harness" / "codementor").stat().st_mode & 0o777 == 0o755
    cache.close()
