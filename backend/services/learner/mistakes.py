"""Mistake kinds: what the sandbox and the static checks saw in a submission, classified for the
learner model. Judged on the server, where the hidden tests are known; the detail kept names a test or
a linter finding, never a hidden test's input or expected value."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from typing import Any

from backend.integrations.sandbox import RunResult
from backend.integrations.sandbox.base import BUILTIN_EXCEPTIONS

EXCEPTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:Error|Exception|Exit|Interrupt))\b")
EMPTY_LITERALS = ("[]", "()", "{}", '""', "''", "set()", "b''", 'b""')

MISTAKE_LABELS = {
    "edge_case_empty": "edge cases on empty input",
    "off_by_one": "off-by-one results",
    "wrong_type": "wrong types",
    "wrong_result": "wrong results",
    "timeout": "code that runs out of time",
    "syntax_error": "syntax errors",
    "exception": "exceptions",
    "style:unused_code": "unused imports or variables",
    "style:undefined_name": "undefined names",
    "style:lint": "linter findings",
    "style:formatting": "code not laid out as the language's formatter lays it out",
    "style:long_function": "long functions",
    "style:deep_nesting": "deeply nested code",
    "style:naming": "unclear names",
}


def mistake_label(kind: str) -> str:
    if kind.startswith("exception:"):
        return f"{kind.split(':', 1)[1]} exceptions"
    return MISTAKE_LABELS.get(kind, kind)


# --- classifying a run -----------------------------------------------------------------------------


def _literal(text: str | None) -> Any:
    try:
        return ast.literal_eval(text) if text is not None else None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def has_empty_input(name: str, test_input: str | None) -> bool:
    if "empty" in name.lower():
        return True
    if test_input is None:
        return False
    text = test_input.strip()
    if not text:
        return True  # a program run on empty stdin
    try:
        tree = ast.parse(text.splitlines()[-1], mode="eval")
    except SyntaxError:
        return False
    if not isinstance(tree.body, ast.Call):
        return False
    return any(ast.unparse(argument) in EMPTY_LITERALS for argument in tree.body.args)


def classify(name: str, message: str | None, test_input: str | None, expected: str | None, actual: str | None) -> str:
    """The kind of one failing test's mistake."""
    text = (message or "").strip()
    if "timed out" in text:
        return "timeout"
    exception = EXCEPTION.match(text)
    if exception and exception.group(1) in ("SyntaxError", "IndentationError", "TabError"):
        return "syntax_error"
    if has_empty_input(name, test_input):
        return "edge_case_empty"
    if exception:
        name = exception.group(1)
        if name == "TypeError":
            return "wrong_type"
        # Only a builtin's name: the code chose its own exception's name, which can spell a hidden input.
        return f"exception:{name}" if name in BUILTIN_EXCEPTIONS else "exception"
    want, got = _literal(expected), _literal(actual)
    if isinstance(want, int) and isinstance(got, int) and abs(want - got) == 1:
        return "off_by_one"
    is_sequence = isinstance(want, list | tuple | str) and type(want) is type(got)
    if is_sequence and abs(len(want) - len(got)) == 1:
        return "off_by_one"
    if want is not None and got is not None and type(want) is not type(got):
        return "wrong_type"
    return "wrong_result"


def run_mistakes(run: RunResult) -> dict[str, str]:
    """Kind → detail (the first failing test of that kind) for a run's failing tests."""
    found: dict[str, str] = {}
    for outcome in run.results:
        if outcome.passed:
            continue
        kind = classify(outcome.name, outcome.message, outcome.input, outcome.expected, outcome.actual)
        found.setdefault(kind, f'test "{outcome.name[:200]}"')
    if run.status == "timeout":
        found.setdefault("timeout", "the run ran out of time")
    return found


def style_issues(
    findings: Sequence[str], long_functions: Sequence[str], deep: Sequence[str], poor_names: Sequence[str]
) -> list[tuple[str, str]]:
    """Static-check findings of a submission as (kind, detail)."""
    issues: dict[str, str] = {}
    for finding in findings:
        kind = (
            "style:undefined_name" if "undefined name" in finding
            else "style:unused_code" if "unused" in finding or "never used" in finding
            else "style:formatting" if "lays this out differently" in finding
            else "style:lint"
        )  # fmt: skip
        issues.setdefault(kind, finding[:300])
    if long_functions:
        issues.setdefault("style:long_function", f"`{long_functions[0]}` is long")
    if deep:
        issues.setdefault("style:deep_nesting", f"`{deep[0]}` nests deeply")
    if poor_names:
        issues.setdefault("style:naming", "names such as " + ", ".join(poor_names[:3]))
    return list(issues.items())
