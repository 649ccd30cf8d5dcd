"""A submission cannot grade its own style through the checker's own off switches (docs/SECURITY.md).

The style part of a compiled language's grade is what the runner's compile step found: clang-format's diff
for C++, the TypeScript compiler's unused-code findings. Both tools obey directives written in the file
they check: `// clang-format off` made any layout "clean", and `// @ts-nocheck` (or `@ts-ignore` above a
line) hid every finding, and with it every strict type error. Found from outside against `python -m backend`:
an untidy C++ program scored style 0.8, the same program under `// clang-format off` 1.0; a TypeScript
program with unused parameters 0.6, under `// @ts-nocheck` 1.0, even with a type error in it. Through the
session's real runner, as the API reaches it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator

import pytest

from backend.integrations.sandbox import RunnerSandbox
from backend.integrations.sandbox.languages import LANGUAGES, LanguageGrader
from tests.runners import shared_runner_url

CPP, TS = LANGUAGES["cpp"], LANGUAGES["typescript"]
TIMEOUT = 20.0


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[LanguageGrader]:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    runner = RunnerSandbox(shared_runner_url(), timeout_seconds=TIMEOUT, queue_timeout_seconds=300)
    yield LanguageGrader(runner, timeout_seconds=TIMEOUT, queue_timeout_seconds=300)
    await runner.close()


def require(available: bool, what: str) -> None:
    if not available:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must score style, but {what} is not installed")
        pytest.skip(f"{what} is not installed")


def shifted(finding: str) -> str:
    """A `line N: ...` finding one line further down (a directive's own line comes first)."""
    number, rest = finding.removeprefix("line ").split(":", 1)
    return f"line {int(number) + 1}:{rest}"


ADD_CASES = [{"name": "adds", "function": "add", "args": "[1, 2]", "expected": "3"}]
UNTIDY_CPP = "long add(long a, long b) {\n      return   a+b ;}\n"


@pytest.mark.parametrize(
    "directive", ["// clang-format off\n", "/* clang-format off */\n", "// clang-format off: my own layout\n"]
)
async def test_clang_format_off_does_not_make_an_untidy_file_clean(sandbox: LanguageGrader, directive: str) -> None:
    require(CPP.available and CPP.style_check is not None, "g++ with clang-format")
    plain = await sandbox.grade(CPP, UNTIDY_CPP, ADD_CASES, user=uuid.uuid4().hex)
    assert plain.status == "passed" and plain.style, plain.style
    switched_off = await sandbox.grade(CPP, directive + UNTIDY_CPP, ADD_CASES, user=uuid.uuid4().hex)
    assert switched_off.status == "passed"
    assert switched_off.style == [shifted(finding) for finding in plain.style]


UNUSED_TS = "function add(a: number, b: number, unused: number): number {\n  return a + b;\n}\n"


async def test_typescript_directives_hide_no_finding_and_no_type_error(sandbox: LanguageGrader) -> None:
    require(TS.available, "the TypeScript compiler")
    plain = await sandbox.grade(TS, UNUSED_TS, ADD_CASES, user=uuid.uuid4().hex)
    assert plain.status == "passed" and plain.style and len(plain.style) == 1, plain.style
    for directive in ("// @ts-nocheck\n", "/* @TS-NOCHECK */\n", "// @ts-ignore\n", "// @ts-expect-error\n"):
        hidden = await sandbox.grade(TS, directive + UNUSED_TS, ADD_CASES, user=uuid.uuid4().hex)
        assert hidden.status == "passed", (directive, hidden.stderr)
        assert hidden.style == [shifted(plain.style[0])], (directive, hidden.style)
    typed_wrong = "// @ts-nocheck\nconst label: number = 'x';\n" + UNUSED_TS.replace(", unused: number", "")
    refused = await sandbox.grade(TS, typed_wrong, ADD_CASES, user=uuid.uuid4().hex)
    assert refused.status == "error" and "main.ts:2: error TS2322" in refused.stderr, refused.stderr


async def test_directive_text_inside_strings_still_runs_as_written(sandbox: LanguageGrader) -> None:
    """Only the check sees the directives neutralised: the program that runs is the submission's own."""
    require(TS.available, "the TypeScript compiler")
    code = 'function add(a: number, b: number): number {\n  console.log("// @ts-ignore");\n  return a + b;\n}\n'
    result = await sandbox.grade(TS, code, ADD_CASES, user=uuid.uuid4().hex)
    assert result.status == "passed" and result.style == []
    assert result.output[0][0] == "// @ts-ignore\n"
