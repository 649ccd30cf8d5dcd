"""Python's style check and static measures of a submission, computed by the sandbox runner, not the API.

pyflakes' findings (the style part of the grade) and the static measures (function length, nesting depth,
naming: the quality part without an LLM, and the learner model's style mistakes) parse and walk the
submitted source. The runner does it (`local.LocalSandbox.execute`, in a thread, cached by the source's
hash like a compiled language's style) and sends the result as the first event of the run's report, before
the harness's own: the API takes the first `style` event of a runner's report, so a submission cannot grade
its own style, and the API process never parses submitted code (docs/SECURITY.md). The API still computes
them itself (`services/grading.py`) for a sandbox that is not our runner (Piston), whose report it does not
trust for this. Not inside bubblewrap: importing pyflakes costs a fresh interpreter ~10 ms per run, 20
times what the check itself costs; nothing is executed here, and the parser's limits are caught.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pyflakes import api as pyflakes_api
from pyflakes import reporter as pyflakes_reporter

MAX_FINDINGS = 50  # base.MAX_STYLE_FINDINGS
MAX_NAMES = 50
LONG_FUNCTION_LINES, DEEP_NESTING = 30, 4
SHORT_NAMES_OK = frozenset({"i", "j", "k", "n", "m", "x", "y", "z", "a", "b", "c", "s", "_", "f", "e", "ch"})
SNAKE = re.compile(r"^_{0,2}[a-z][a-z0-9_]*_{0,2}$")
CAPWORDS = re.compile(r"^_?[A-Z][A-Za-z0-9]*$")
# Code nested deeper than the parser or the walks over its tree can go (RecursionError, or the parser's
# MemoryError "too many nested parentheses"): it may still run and pass, but it is not tidy by any measure.
TOO_DEEP = "line 1: the code is nested too deeply to be checked"
UNANALYSABLE = (RecursionError, MemoryError)
CACHE_ENTRIES = 1024


@dataclass(frozen=True)
class StaticQuality:
    score: float
    long_functions: list[str]
    deep_functions: list[str]
    poor_names: list[str]


def lint(code: str) -> list[str]:
    """pyflakes findings as `line N: message` (an unparsable file gives none: the run reports it)."""

    class Collect(pyflakes_reporter.Reporter):
        def __init__(self) -> None:
            self.found: list[str] = []

        def flake(self, message: Any) -> None:
            self.found.append(f"line {message.lineno}: {message.message % message.message_args}")

        def syntaxError(self, *_: Any) -> None:
            return None

        def unexpectedError(self, *_: Any) -> None:  # the parser gave up on it, but not as a syntax error
            self.found.append(TOO_DEEP)

    collector = Collect()
    try:
        pyflakes_api.check(code, "solution.py", collector)
    except UNANALYSABLE:
        return [TOO_DEEP]
    return collector.found


def _depth(node: ast.AST, level: int = 0) -> int:
    nested = (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.AsyncFor, ast.AsyncWith, ast.Match)
    deepest = level
    for child in ast.iter_child_nodes(node):
        deepest = max(deepest, _depth(child, level + isinstance(child, nested)))
    return deepest


def static_quality(code: str) -> StaticQuality:
    """Function length, nesting depth and naming, each a third of the score (0 when the code cannot be
    parsed or walked: a syntax error, or nesting deeper than the parser or `_depth` can go)."""
    try:
        return _static_quality(ast.parse(code))
    except (SyntaxError, ValueError, *UNANALYSABLE):
        return StaticQuality(0.0, [], [], [])


def _static_quality(tree: ast.Module) -> StaticQuality:
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    long_functions = [f.name for f in functions if (f.end_lineno or f.lineno) - f.lineno + 1 > LONG_FUNCTION_LINES]
    deep_functions = [f.name for f in functions if _depth(f) >= DEEP_NESTING]
    names: list[tuple[str, bool]] = []  # (name, is a class)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.append((node.name, False))
            names += [(arg.arg, False) for arg in node.args.args if arg.arg not in {"self", "cls"}]
        elif isinstance(node, ast.ClassDef):
            names.append((node.name, True))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.append((node.id, False))
    poor = sorted(
        {
            name
            for name, is_class in names
            if (not (CAPWORDS if is_class else SNAKE).match(name) and not name.isupper())  # CONSTANTS are fine
            or (not is_class and len(name) == 1 and name not in SHORT_NAMES_OK)
        }
    )
    unique_names = {name for name, _ in names}
    parts = [
        1.0 - len(long_functions) / len(functions) if functions else 1.0,
        1.0 - len(deep_functions) / len(functions) if functions else 1.0,
        1.0 - len(poor) / len(unique_names) if unique_names else 1.0,
    ]
    return StaticQuality(round(sum(parts) / 3, 3), long_functions, deep_functions, poor)


def python_style_event(code: str) -> dict[str, Any]:
    """The runner's `style` event of a Python submission: pyflakes' findings and the static measures."""
    quality = static_quality(code)
    return {
        "event": "style",
        "findings": lint(code)[:MAX_FINDINGS],
        "quality": {
            "score": quality.score,
            "long_functions": quality.long_functions[:MAX_NAMES],
            "deep_functions": quality.deep_functions[:MAX_NAMES],
            "poor_names": quality.poor_names[:MAX_NAMES],
        },
    }


def quality_of(event: Any) -> StaticQuality | None:
    """The static measures of a runner's `style` event (untrusted input's shape checked anyway)."""
    if not isinstance(event, dict):
        return None
    score = event.get("score")
    lists = [event.get(key) for key in ("long_functions", "deep_functions", "poor_names")]
    if not isinstance(score, int | float) or isinstance(score, bool) or not 0 <= score <= 1:
        return None
    names = [[str(name)[:100] for name in items[:MAX_NAMES]] for items in lists if isinstance(items, list)]
    if len(names) != len(lists):
        return None
    return StaticQuality(float(score), *names)


class StyleCache:
    """The runner's `style` events by the source's sha256, least recently used evicted: a resubmitted
    source (or the reference solution) is not parsed again."""

    def __init__(self, max_entries: int = CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._events: OrderedDict[str, dict[str, Any]] = OrderedDict()

    @staticmethod
    def key(code: str) -> str:
        return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        found = self._events.get(key)
        if found is not None:
            self._events.move_to_end(key)
        return found

    def put(self, key: str, event: dict[str, Any]) -> None:
        self._events[key] = event
        while len(self._events) > self.max_entries:
            self._events.popitem(last=False)

    async def event(self, code: str) -> dict[str, Any]:
        """The `style` event of `code`: cached, or computed in a thread (the runner's loop keeps serving)."""
        key = self.key(code)
        found = self.get(key)
        if found is None:
            found = await asyncio.to_thread(python_style_event, code)
            self.put(key, found)
        return found
