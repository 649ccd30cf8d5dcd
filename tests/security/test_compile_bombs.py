"""Compile bombs are the submission's own failure, never the sandbox's (docs/SECURITY.md).

A TypeScript type that recurses until the compiler's heap is gone (`F<[...N, 1]>` to a length of 2000) killed
the compile job without a word about the source: the API answered `503 sandbox_unavailable` ("try again
shortly"), kept the submission as `error` and logged an error, for every resubmission, found from outside
against `python -m backend`. The compiler that started and died on the one source it was given has failed on
that source: a compile error for the student, like g++ running out of memory on a macro bomb.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator

import pytest

from backend.integrations.sandbox import RunnerSandbox
from backend.integrations.sandbox.languages import LANGUAGES, LanguageGrader
from tests.runners import shared_runner_url

TS = LANGUAGES["typescript"]
ADD_CASES = [{"name": "adds", "function": "add", "args": "[1, 2]", "expected": "3"}]
TYPE_BOMB = """type F<N extends unknown[]> = N["length"] extends 2000 ? N : F<[...N, 1]>;
const grows: F<[]> = null as any;
function add(a: number, b: number): number {
  return a + b + (grows ? 0 : 0);
}
"""


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[LanguageGrader]:
    if shutil.which("bwrap") is None or not TS.available:
        pytest.skip("bubblewrap or the TypeScript compiler is not installed")
    runner = RunnerSandbox(shared_runner_url(), timeout_seconds=10, queue_timeout_seconds=300)
    yield LanguageGrader(runner, timeout_seconds=10, queue_timeout_seconds=300)
    await runner.close()


async def test_a_typescript_compile_bomb_is_a_compile_error_not_an_unavailable_sandbox(
    sandbox: LanguageGrader,
) -> None:
    result = await sandbox.grade(TS, TYPE_BOMB, ADD_CASES, user=uuid.uuid4().hex)
    assert result.status == "error" and result.error_line is None
    assert "could not finish" in result.stderr, result.stderr
    fine = await sandbox.grade(TS, "function add(a: number, b: number): number {\n  return a + b;\n}\n", ADD_CASES)
    assert fine.status == "passed"  # the runner and its slot are fine afterwards
