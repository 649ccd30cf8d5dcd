"""The authored exercise catalog: one TOML file per exercise in `exercises/` next to this module.

Slugs are stable identities (the seed upserts by slug): never rename one, add a new one instead.
`load_catalog()` validates every file and raises `CatalogError` naming the file on the first problem.
Tests use the format of docs/API.md ("Exercise tests"): a call test `{name, setup?, call, expected}`
(`expected` a Python literal) or a program test `{name, stdin, expected_stdout}`.

The same exercise in other languages: an optional `[neutral]` table (`function`, the default snake_case name
of the function an authored call case calls; `cases`, authored language-neutral cases, see `neutral.py`;
`exclude`, names of derived cases that only make sense in Python, e.g. integers beyond 2**53) and one table
per language
(`[javascript]`: `starter_code`, `solution`, and `description`/`hints` where the Python ones would
mislead). Every other language is graded on the neutral cases: the ones derived from the Python tests plus
the authored ones. A language's table may instead be a file of its own, `exercises/<language>/<slug>.toml`
holding the same keys at its top level (one folder per language keeps each language's code together).
"""

from __future__ import annotations

import ast
import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.content import neutral

EXERCISES_DIR = Path(__file__).resolve().parent / "exercises"

DIFFICULTIES = ("easy", "medium", "hard")
EXERCISE_TYPES = ("algorithm", "data_structure", "debugging", "practical")
LANGUAGES = ("python",)  # the language of the authored tests
VARIANT_LANGUAGES = ("javascript", "typescript", "java", "cpp", "go")  # graded on the neutral cases

_STR_KEYS = ("slug", "title", "language", "difficulty", "exercise_type", "description", "starter_code", "solution")
_REQUIRED = (*_STR_KEYS, "topics", "hints", "examples", "tests")
_OPTIONAL = ("neutral", *VARIANT_LANGUAGES)
_VARIANT_KEYS = {"starter_code", "solution", "description", "hints"}
MIN_NEUTRAL_CASES = 6
_CALL_KEYS = {"name", "call", "expected"}
_CALL_OPTIONAL = {"setup"}
_PROGRAM_KEYS = {"name", "stdin", "expected_stdout"}


class CatalogError(ValueError):
    """An exercise file is malformed; the message names the file."""


@dataclass(frozen=True)
class Variant:
    """The exercise in one more language: its own code, and its own words where Python's would mislead."""

    language: str
    starter_code: str
    solution: str
    description: str
    hints: list[str]
    examples: list[dict]  # neutral cases shown to the student
    tests: list[dict]  # every neutral case (hidden)


@dataclass(frozen=True)
class ExerciseSpec:
    slug: str
    title: str
    language: str
    difficulty: str
    exercise_type: str
    topics: list[str]
    description: str
    starter_code: str
    solution: str
    hints: list[str]
    examples: list[dict]
    tests: list[dict]
    variants: dict[str, Variant] = field(default_factory=dict)


def _check_test(test: Any, where: str) -> dict:
    if not isinstance(test, dict):
        raise ValueError(f"{where} is not a table")
    keys = set(test)
    if _CALL_KEYS.issubset(keys) and keys.issubset(_CALL_KEYS | _CALL_OPTIONAL):
        if not all(isinstance(test[k], str) for k in keys):
            raise ValueError(f"{where}: every field must be a string")
        try:
            ast.literal_eval(test["expected"])
        except (ValueError, SyntaxError) as exc:
            raise ValueError(f"{where}: expected {test['expected']!r} is not a Python literal ({exc})") from None
        try:
            ast.parse(test["call"], mode="eval")
            ast.parse(test.get("setup", ""), mode="exec")
        except SyntaxError as exc:
            raise ValueError(f"{where}: setup/call is not valid Python ({exc})") from None
    elif keys == _PROGRAM_KEYS:
        if not all(isinstance(test[k], str) for k in keys):
            raise ValueError(f"{where}: every field must be a string")
    else:
        raise ValueError(
            f"{where} must be a call test {{name, setup?, call, expected}} "
            f"or a program test {{name, stdin, expected_stdout}}, got keys {sorted(keys)}"
        )
    return dict(test)


def _parse(data: dict[str, Any], path: Path) -> ExerciseSpec:
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"missing keys {missing}")
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ValueError(f"unknown keys {unknown}")
    for key in _STR_KEYS:
        if not isinstance(data[key], str) or not data[key].strip():
            raise ValueError(f"{key} must be a non-empty string")
    if data["slug"] != path.stem:
        raise ValueError(f"slug {data['slug']!r} must match the file name {path.stem!r}")
    if data["language"] not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}")
    if data["difficulty"] not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}")
    if data["exercise_type"] not in EXERCISE_TYPES:
        raise ValueError(f"exercise_type must be one of {EXERCISE_TYPES}")
    topics, hints = data["topics"], data["hints"]
    if not topics or not all(isinstance(t, str) and t == t.strip().lower() and t for t in topics):
        raise ValueError("topics must be a non-empty list of lowercase strings")
    if len(hints) != 3 or not all(isinstance(h, str) and h.strip() for h in hints):
        raise ValueError("hints must be exactly 3 non-empty strings")
    examples = [_check_test(t, f"examples[{i}]") for i, t in enumerate(data["examples"])]
    tests = [_check_test(t, f"tests[{i}]") for i, t in enumerate(data["tests"])]
    if not 2 <= len(examples) <= 3:
        raise ValueError("there must be 2 or 3 examples")
    if len(tests) < 6:
        raise ValueError("there must be at least 6 hidden tests")
    variants = _parse_variants(data, examples, tests)
    return ExerciseSpec(
        slug=data["slug"],
        title=data["title"],
        language=data["language"],
        difficulty=data["difficulty"],
        exercise_type=data["exercise_type"],
        topics=list(topics),
        description=data["description"],
        starter_code=data["starter_code"],
        solution=data["solution"],
        hints=list(hints),
        examples=examples,
        tests=tests,
        variants=variants,
    )


def _parse_variants(data: dict[str, Any], examples: list[dict], tests: list[dict]) -> dict[str, Variant]:
    """The `[neutral]` table and the per-language tables: every language gets the same neutral cases."""
    table = data.get("neutral", {})
    if not isinstance(table, dict) or set(table) - {"function", "cases", "exclude"}:
        raise ValueError("[neutral] may only hold function, cases and exclude")
    function = table.get("function")
    if function is not None and not (isinstance(function, str) and neutral.IDENTIFIER.match(function)):
        raise ValueError("[neutral] function must be an identifier")
    exclude = set(table.get("exclude", []))
    derived_examples = [c for c in neutral.derive_cases(examples) if c["name"] not in exclude]
    derived = [c for c in neutral.derive_cases(tests) if c["name"] not in exclude]
    authored = []
    for index, case in enumerate(table.get("cases", [])):
        if isinstance(case, dict) and "args" in case and "function" not in case:
            if function is None:
                raise ValueError(f"[neutral] cases[{index}] names no function, and [neutral] has no default")
            case = {**case, "function": function}
        authored.append(neutral.check_case(case, f"[neutral] cases[{index}]"))
    every = derived_examples + derived + authored  # what other languages are graded on (examples included)
    if exclude - {c["name"] for c in neutral.derive_cases(examples + tests)}:
        raise ValueError(f"[neutral] exclude names no derived case: {sorted(exclude)}")
    variants: dict[str, Variant] = {}
    for language in VARIANT_LANGUAGES:
        part = data.get(language)
        if part is None:
            continue
        if not isinstance(part, dict) or not {"starter_code", "solution"} <= set(part) <= _VARIANT_KEYS:
            raise ValueError(f"[{language}] needs starter_code and solution (and may have description, hints)")
        if len(every) < MIN_NEUTRAL_CASES:
            raise ValueError(f"[{language}] needs at least {MIN_NEUTRAL_CASES} neutral cases, has {len(every)}")
        hints = part.get("hints", data["hints"])
        if len(hints) != 3 or not all(isinstance(h, str) and h.strip() for h in hints):
            raise ValueError(f"[{language}] hints must be exactly 3 non-empty strings")
        for key in ("starter_code", "solution", "description"):
            if key in part and not (isinstance(part[key], str) and part[key].strip()):
                raise ValueError(f"[{language}] {key} must be a non-empty string")
        shown = derived_examples or every[:2]
        variants[language] = Variant(
            language=language,
            starter_code=part["starter_code"],
            solution=part["solution"],
            description=part.get("description", data["description"]),
            hints=list(hints),
            examples=shown,
            tests=every,
        )
    return variants


def load_exercise(path: Path) -> ExerciseSpec:
    """Read and validate one exercise file, with its per-language files (`<language>/<slug>.toml` next to it)."""
    where = path.name
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        for language in VARIANT_LANGUAGES:
            part = path.parent / language / path.name
            if part.is_file():
                where = f"{language}/{path.name}"
                if language in data:
                    raise ValueError(f"[{language}] is both a table of {path.name} and a file of its own")
                with part.open("rb") as fh:
                    data[language] = tomllib.load(fh)
        where = path.name
        return _parse(data, path)
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as exc:
        raise CatalogError(f"{where}: {exc}") from exc


@functools.cache
def load_catalog() -> list[ExerciseSpec]:
    """Every exercise in `exercises/`, sorted by file name; validated, slugs unique. Cached."""
    specs: list[ExerciseSpec] = []
    seen: dict[str, str] = {}
    for path in sorted(EXERCISES_DIR.glob("*.toml")):
        spec = load_exercise(path)
        if spec.slug in seen:
            raise CatalogError(f"{path.name}: slug {spec.slug!r} already used by {seen[spec.slug]}")
        seen[spec.slug] = path.name
        specs.append(spec)
    return specs
