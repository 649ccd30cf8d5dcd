"""The review that runs without an AI model (`model: "static"`): real findings, not a placeholder.

- pyflakes on Python files: undefined names are errors, unused imports and variables warnings;
- functions longer than `LONG_FUNCTION_LINES` (ast), which are hard to read and to test;
- no tests among the reviewed files, when there is code to test;
- secrets that look committed (AWS keys, GitHub tokens, private keys, password/api_key literals), shown
  masked: a review is stored, published on GitHub and shown in the browser, none of which may repeat a
  credential.

Pure functions over file texts: no I/O, so the review job runs it in a thread (parsing is CPU work).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pyflakes import checker as pyflakes_checker
from pyflakes import messages as pyflakes_messages

MODEL = "static"
LONG_FUNCTION_LINES = 50
MAX_COMMENTS_PER_FILE = 30
PENALTY = {"error": 12, "warning": 4, "info": 1}
MIN_SCORE = 5  # a score of 0 says "nothing is right", which a linter cannot know

PYFLAKES_ERRORS = (
    pyflakes_messages.UndefinedName,
    pyflakes_messages.UndefinedLocal,
    pyflakes_messages.UndefinedExport,
)
TEST_FILE = re.compile(
    r"(^|/)(tests?|__tests__|spec)/|(^|/)test_[^/]*\.py$|_test\.(py|go)$|\.(test|spec)\.[jt]sx?$|(^|/)conftest\.py$"
)
CODE_SUFFIXES = (".py", ".js", ".jsx", ".ts", ".tsx", ".go", ".rb", ".java", ".rs", ".php", ".cs", ".kt", ".c", ".cpp")
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
)
SECRET_ASSIGNMENT = re.compile(
    r"""(?ix)\b(password|passwd|pwd|secret|secret_key|api_key|apikey|access_token|auth_token|token)\b
    ["']?\s*[:=]\s*(?P<quote>["'])(?P<value>[^"'\s]{6,})(?P=quote)"""
)
PLACEHOLDER = re.compile(
    r"(?i)^(?:x+|\*+|changeme|change-me|password|secret|example|dummy|test|placeholder|your[-_].*|<.*>|\$\{.*\}|%\(.*\)s|\{\{.*\}\})$"
)

LEVEL_TIPS = {
    "beginner": "Each comment says what the tool saw and why it matters; fix the errors first, one at a time.",
    "intermediate": "Fix the errors first; the warnings are cheap wins for readability.",
    "advanced": "Mostly mechanical findings; consider adding the linters to CI so they never come back.",
    "expert": "Mechanical findings only; wire pyflakes (or ruff) and a secret scanner into CI.",
}


@dataclass(frozen=True)
class SourceFile:
    path: str
    text: str


@dataclass(frozen=True)
class Finding:
    path: str
    line: int | None
    severity: str
    category: str
    message: str
    suggestion: str | None

    def as_comment(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "severity": self.severity,
            "category": self.category,
            "message": self.message,
            "suggestion": self.suggestion,
        }


@dataclass(frozen=True)
class StaticReview:
    summary: str
    score: int
    comments: list[dict[str, object]]


def review(
    files: list[SourceFile],
    *,
    skill_level: str | None,
    focus_areas: Iterable[str] = (),
    changed_lines: dict[str, set[int]] | None = None,
    why: str = "no AI model is configured",
) -> StaticReview:
    """With `changed_lines` (a pull request), findings on lines it did not touch are left out: the author
    is asked about their change, not about the file's history. Secrets are the exception: one committed
    earlier is still readable by everyone with access, and still needs rotating."""
    findings: list[Finding] = []
    for source in files:
        per_file = [*find_secrets(source)]
        if source.path.endswith(".py"):
            per_file += python_findings(source)
        if changed_lines is not None:
            touched = changed_lines.get(source.path, set())
            per_file = [f for f in per_file if f.category == "security" or f.line is None or f.line in touched]
        findings += sorted(per_file, key=lambda f: f.line or 0)[:MAX_COMMENTS_PER_FILE]
    missing_tests = missing_tests_finding(files)
    if missing_tests is not None:
        findings.append(missing_tests)
    focus = set(focus_areas)
    # Focus areas put their findings first; nothing is dropped, a linter finding is cheap to read.
    findings.sort(key=lambda f: (f.category not in focus, -PENALTY[f.severity]))
    return StaticReview(
        summary=summarise(files, findings, skill_level, why),
        score=score(findings),
        comments=[finding.as_comment() for finding in findings],
    )


def python_findings(source: SourceFile) -> list[Finding]:
    try:
        tree = ast.parse(source.text, filename=source.path)
        return [*pyflakes_findings(source, tree), *long_functions(source, tree)]
    except (RecursionError, MemoryError):  # nested deeper than the parser or the walks can go: say so
        return [
            Finding(
                source.path,
                None,
                "warning",
                "best_practices",
                "This file is nested too deeply for Python's own tools to read it through.",
                "Break the deepest expression into named steps: a reader cannot follow it either.",
            )
        ]
    except (SyntaxError, ValueError) as error:
        line = getattr(error, "lineno", None)
        return [
            Finding(
                source.path,
                line,
                "error",
                "correctness",
                f"Python cannot parse this file: {getattr(error, 'msg', str(error))}.",
                "Nothing else in the file runs until this is fixed; look at this line and the one before it.",
            )
        ]


def pyflakes_findings(source: SourceFile, tree: ast.Module) -> list[Finding]:
    found = pyflakes_checker.Checker(tree, filename=source.path)
    findings = []
    for message in found.messages:
        text = message.message % message.message_args
        if isinstance(message, PYFLAKES_ERRORS):
            findings.append(
                Finding(
                    source.path,
                    message.lineno,
                    "error",
                    "correctness",
                    f"pyflakes: {text}. This raises a NameError when the line runs.",
                    "Define or import the name before using it, or fix its spelling.",
                )
            )
        else:
            findings.append(
                Finding(
                    source.path,
                    message.lineno,
                    "warning",
                    "best_practices",
                    f"pyflakes: {text}.",
                    "Remove what is unused: dead code makes readers wonder what they missed.",
                )
            )
    return findings


def long_functions(source: SourceFile, tree: ast.Module) -> list[Finding]:
    findings = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
            length = node.end_lineno - node.lineno + 1
            if length > LONG_FUNCTION_LINES:
                findings.append(
                    Finding(
                        source.path,
                        node.lineno,
                        "warning",
                        "readability",
                        f"`{node.name}` is {length} lines long (more than {LONG_FUNCTION_LINES}): long functions "
                        "are hard to read, test and change.",
                        "Split it into smaller functions that each do one named thing.",
                    )
                )
    return findings


def find_secrets(source: SourceFile) -> list[Finding]:
    findings = []
    for number, line in enumerate(source.text.splitlines(), start=1):
        for label, pattern in SECRET_PATTERNS:
            match = pattern.search(line)
            if match is not None:
                findings.append(_secret(source.path, number, label, match.group(0)))
        assignment = SECRET_ASSIGNMENT.search(line)
        if (
            assignment is not None
            and not PLACEHOLDER.match(assignment["value"])
            and not any(pattern.search(line) for _, pattern in SECRET_PATTERNS)  # reported above already
        ):
            label = f"a hard-coded {assignment[1].lower()}"
            findings.append(_secret(source.path, number, label, assignment["value"]))
    return findings


def mask(secret: str) -> str:
    """Enough to recognise which credential it is, never enough to use it."""
    if secret.startswith("-----BEGIN"):
        return secret
    return f"{secret[:4]}…" if len(secret) > 8 else "…"


def _secret(path: str, line: int, label: str, value: str) -> Finding:
    return Finding(
        path,
        line,
        "error",
        "security",
        f"This looks like {label} committed to the repository ({mask(value)}). Anyone who can read the "
        "repository, or its history, can use it.",
        "Revoke and rotate it now, then read it from an environment variable or a secrets manager; removing "
        "it in a later commit does not remove it from the history.",
    )


def missing_tests_finding(files: list[SourceFile]) -> Finding | None:
    code = [source for source in files if source.path.endswith(CODE_SUFFIXES)]
    if not code or any(TEST_FILE.search(source.path) for source in files):
        return None
    return Finding(
        code[0].path,
        None,
        "info",
        "testing",
        "None of the reviewed files are tests, so nothing shows this code works or keeps working.",
        "Add a test file next to the change (e.g. tests/test_<module>.py with pytest) covering the main case "
        "and one edge case.",
    )


def score(findings: list[Finding]) -> int:
    return max(MIN_SCORE, 100 - sum(PENALTY[finding.severity] for finding in findings))


def summarise(
    files: list[SourceFile], findings: list[Finding], skill_level: str | None, why: str = "no AI model is configured"
) -> str:
    counts = {severity: sum(1 for f in findings if f.severity == severity) for severity in ("error", "warning", "info")}
    head = (
        f"Static review of {len(files)} file{'s' if len(files) != 1 else ''} ({why}, so "
        "this covers what tools can check: pyflakes, function length, tests and committed secrets). "
    )
    if not findings:
        return head + "Nothing to report: no linter findings, no long functions and no secrets."
    body = f"Found {counts['error']} error(s), {counts['warning']} warning(s) and {counts['info']} note(s)."
    if any(f.category == "security" for f in findings):
        body += " A secret appears to be committed: rotate it before anything else."
    return f"{head}{body} {LEVEL_TIPS.get(skill_level or 'beginner', LEVEL_TIPS['beginner'])}"
