"""The review's pure rules: which files are skipped, which lines a diff shows, how a model's answer is
read (no database, no network: these are the decisions a user sees in `files_skipped` and comments)."""

from __future__ import annotations

import json

import pytest

from backend.integrations.github import PullFile
from backend.services.reviews.llm import parse_review
from backend.services.reviews.selection import (
    MAX_FILES,
    Collected,
    added_lines,
    skip_reason_for_path,
    triage_pull_files,
)
from backend.services.reviews.static import SourceFile, mask


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("src/app.py", None),
        ("vendor/github.com/x/y.go", "vendored"),
        ("web/node_modules/left-pad/index.js", "vendored"),
        ("third_party/lib.c", "vendored"),
        ("package-lock.json", "generated"),
        ("backend/poetry.lock", "generated"),
        ("static/app.min.js", "generated"),
        ("proto/user_pb2.py", "generated"),
        ("dist/bundle.js", "generated"),
        ("build/lib/x.py", "generated"),
        ("docs/logo.PNG", "binary"),
        ("rebuild.py", None),  # "build" inside a name is not the build/ directory
        ("distance/calc.py", None),
    ],
)
def test_skip_reason_for_path_names_vendored_generated_and_binary_files(path: str, reason: str | None) -> None:
    assert skip_reason_for_path(path) == reason


def test_triage_keeps_at_most_the_file_limit_and_reports_the_rest() -> None:
    files = [PullFile(f"f{i}.py", "modified", "@@ -1 +1 @@\n+x", 1, 0, None) for i in range(MAX_FILES + 3)]
    files.append(PullFile("gone.py", "removed", None, 0, 4, None))
    files.append(PullFile("image.svg", "added", None, 0, 0, None))
    kept, skipped = triage_pull_files(files)
    assert len(kept) == MAX_FILES
    assert skipped == [
        *[(f"f{i}.py", "too_many") for i in range(MAX_FILES, MAX_FILES + 3)],
        ("gone.py", "deleted"),
        ("image.svg", "no_diff"),
    ]


def test_added_lines_are_the_new_sides_added_and_context_lines() -> None:
    patch = "@@ -1,4 +1,5 @@\n import os\n-import sys\n+import re\n+import json\n x = 1\n@@ -20,2 +21,2 @@\n-a\n+b\n c"
    assert added_lines(patch) == {1, 2, 3, 4, 21, 22}
    assert added_lines(None) == set()


def reviewed(*files: tuple[str, str]) -> Collected:
    return Collected(files=[SourceFile(path, text) for path, text in files])


def test_parse_review_accepts_a_fenced_answer_and_cleans_its_comments() -> None:
    answer = {
        "summary": "Fine.",
        "score": 72.6,
        "comments": [
            {"path": "a.py", "line": 0, "severity": "CRITICAL", "category": "bug", "message": "m"},
            {"path": "a.py", "line": 50, "severity": "minor", "message": "n", "suggestion": None},
            {"path": "elsewhere.py", "line": 1, "severity": "info", "message": "dropped"},
            "not a comment",
        ],
    }
    summary, score, comments = parse_review(f"```json\n{json.dumps(answer)}\n```", reviewed(("a.py", "x\ny\nz\n")))
    assert (summary, score) == ("Fine.", 73)
    assert [(c["line"], c["severity"], c["category"]) for c in comments] == [
        (1, "error", "bug"),
        (3, "info", "general"),
    ]


@pytest.mark.parametrize("text", ["", "Looks good to me!", '{"summary": "x"}', '{"summary": "", "score": 5}', "[1]"])
def test_parse_review_refuses_what_is_not_a_review(text: str) -> None:
    with pytest.raises(ValueError):
        parse_review(text, reviewed(("a.py", "x")))


def test_mask_never_shows_enough_of_a_secret_to_use_it() -> None:
    assert mask("ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8") == "ghp_…"
    assert mask("hunter2") == "…"


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [
        ("x = " + " + ".join(["1"] * 12_000) + "\n", True),  # deeper than the compiler's recursion limit
        ("x = " + "-" * 20_000 + "1\n", True),  # the parser's MemoryError
        ("x = " + "(" * 150 + "1" + ")" * 150 + "\n", False),  # deep, and still read through
    ],
    ids=["terms", "unary", "parentheses"],
)
def test_a_file_nested_too_deeply_is_a_finding_not_a_failed_review(text: str, too_deep: bool) -> None:
    """A repository file is anyone's code: one nested past what the parser or pyflakes can walk raised
    RecursionError or MemoryError out of the static review, which then failed instead of saying why."""
    from backend.services.reviews.static import review

    result = review([SourceFile("deep.py", text), SourceFile("fine.py", "import os\n")], skill_level=None)
    deep = [comment["message"] for comment in result.comments if comment["path"] == "deep.py"]
    said = "This file is nested too deeply for Python's own tools to read it through."
    assert (said in deep) is too_deep, deep
    assert any(comment["path"] == "fine.py" and "'os'" in str(comment["message"]) for comment in result.comments)
