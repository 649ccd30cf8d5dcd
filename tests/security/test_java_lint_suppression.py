"""A Java submission cannot grade its own style with `@SuppressWarnings` (docs/SECURITY.md).

Java's style part is javac's own lint of the submission (`-Xlint:rawtypes,unchecked,...`), and javac obeys
`@SuppressWarnings` written in the file it compiles: one annotation on the class made any raw type or
unchecked cast "clean" (style 1.0), the Java form of `// clang-format off` and `// @ts-nocheck`
(tests/security/test_style_directives.py). The lint now reads the file with the annotation disarmed, in
every spelling javac accepts; the classes that run are still compiled from the submission as written.
Only `[unchecked]` stays the submission's to suppress: a generic array cannot be made without it.
Through the session's real runner, as the API reaches it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator

import pytest

from backend.content.catalog import load_catalog
from backend.integrations.sandbox import RunnerSandbox
from backend.integrations.sandbox.languages import LANGUAGES, LanguageGrader
from tests.runners import shared_runner_url

JAVA = LANGUAGES["java"]
TIMEOUT = 30.0
CASES = [{"name": "pairs", "function": "pairs", "args": "[3]", "expected": "3"}]
# Two lint findings (a raw type, and the unchecked call it makes), both on line 5.
RAW = """import java.util.ArrayList;
import java.util.List;

public class Solution {
    public static int pairs(int n) { List out = new ArrayList(); out.add(n); return n; }
}
"""


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[LanguageGrader]:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    if not (JAVA.available and JAVA.style_check is not None):
        if os.environ.get("CI") == "true":
            pytest.fail("CI must score Java's style, but the JDK is not installed")
        pytest.skip("the JDK is not installed")
    runner = RunnerSandbox(shared_runner_url(), timeout_seconds=TIMEOUT, queue_timeout_seconds=300)
    yield LanguageGrader(runner, timeout_seconds=TIMEOUT, queue_timeout_seconds=300)
    await runner.close()


async def grade(sandbox: LanguageGrader, code: str) -> tuple[str, list[str]]:
    result = await sandbox.grade(JAVA, code, CASES, user=uuid.uuid4().hex)
    assert result.status == "passed", (result.stderr, result.results)
    return result.status, list(result.style or [])


BOTH = '{"rawtypes", "unchecked"}'
SUPPRESSED = [
    ("class", RAW.replace("public class", f"@SuppressWarnings({BOTH})\npublic class"), 1),
    ("rawtypes", RAW.replace("public class", '@SuppressWarnings("rawtypes") public class'), 0),
    ("qualified", RAW.replace("public class", f"@java.lang.SuppressWarnings({BOTH})\npublic class"), 1),
    ("spaced", RAW.replace("public class", f"@ java . lang\n.SuppressWarnings(value = {BOTH}) public class"), 1),
    (
        "method",
        RAW.replace("    public static", f"    @SuppressWarnings(\n        {BOTH}\n    )\n    public static"),
        3,
    ),
    (
        "commented",
        RAW.replace("public class", f"@java/* a */./* b */lang // c\n.SuppressWarnings({BOTH}) public class"),
        1,
    ),
    ("escaped", RAW.replace("public class", f"@\\u0053uppress\\uuu0057arnings({BOTH}) public class"), 0),
]


@pytest.mark.parametrize(("spelling", "code", "shift"), SUPPRESSED, ids=[case[0] for case in SUPPRESSED])
async def test_suppress_warnings_hides_no_lint_finding(
    sandbox: LanguageGrader, spelling: str, code: str, shift: int
) -> None:
    _, plain = await grade(sandbox, RAW)
    assert plain and all(finding.startswith("line 5:") for finding in plain), plain
    unchecked = "unchecked" in code  # the one kind the submission's own suppression still hides
    kept = [finding.split(":", 1)[1] for finding in plain if not (unchecked and "[unchecked]" in finding)]
    assert len(plain) == 3 and len(kept) == 2 + (not unchecked)  # two raw types, the unchecked call they make
    _, suppressed = await grade(sandbox, code)
    assert sorted(finding.split(":", 1)[1] for finding in suppressed) == sorted(kept), (spelling, suppressed)
    assert all(finding.startswith(f"line {5 + shift}:") for finding in suppressed), (spelling, suppressed)


async def test_a_file_whose_copy_cannot_be_linted_scores_no_style(sandbox: LanguageGrader) -> None:
    """The copy names an annotation of ours: a submission declaring a class of that name breaks the copy's
    compile, and with it the lint's word on the file, which then counts as badly as style can."""
    code = RAW.replace("public class", '@SuppressWarnings("all")\npublic class') + "class CodementorLintKept {}\n"
    _, findings = await grade(sandbox, code)
    assert len(findings) == 5 and any("cannot be linted" in finding for finding in findings), findings


async def test_a_clean_file_with_the_annotation_stays_clean_and_runs_as_written(sandbox: LanguageGrader) -> None:
    code = (
        "public class Solution {\n"
        '    @SuppressWarnings("unused")\n'
        '    public static int pairs(int n) { System.out.println("@SuppressWarnings"); return n; }\n'
        "}\n"
    )
    result = await sandbox.grade(JAVA, code, CASES, user=uuid.uuid4().hex)
    assert result.status == "passed" and result.style == [], (result.stderr, result.style)
    assert result.output[0][0] == "@SuppressWarnings\n"


async def test_catalog_sources_that_suppress_unchecked_stay_clean(sandbox: LanguageGrader) -> None:
    """A student who keeps the starter's generic-array idiom loses no style point for it."""
    specs = [spec for spec in load_catalog() if "SuppressWarnings" in spec.variants["java"].solution]
    assert specs  # merge-sorted-streams makes an array of a generic type
    for spec in specs:
        variant = spec.variants["java"]
        for code in (variant.solution, variant.starter_code):
            result = await sandbox.grade(JAVA, code, variant.tests[:1], user=uuid.uuid4().hex)
            assert result.style == [], (spec.slug, result.style, result.stderr)
