"""The authored exercise catalog: it loads, is big and varied enough, and its hints never give the answer."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections import Counter
from pathlib import Path

import pytest

from backend.content import catalog
from backend.content.catalog import CatalogError, ExerciseSpec, load_catalog, load_exercise

# Each topic area of the brief, satisfied by any one of its topic names.
TOPIC_AREAS = {
    "strings": {"strings"},
    "lists": {"lists"},
    "dicts/sets": {"dicts", "sets"},
    "recursion": {"recursion"},
    "sorting/searching": {"sorting", "searching"},
    "math": {"math"},
    "classes": {"classes"},
    "iterators/generators": {"iterators", "generators"},
    "parsing/regex": {"parsing", "regex"},
    "dynamic programming": {"dynamic-programming"},
}


@pytest.fixture(scope="module")
def specs() -> list[ExerciseSpec]:
    return load_catalog()


def test_catalog_loads_and_is_cached(specs: list[ExerciseSpec]) -> None:
    assert specs and all(isinstance(s, ExerciseSpec) for s in specs)
    assert load_catalog() is specs
    assert len({s.slug for s in specs}) == len(specs)


def test_counts_per_difficulty(specs: list[ExerciseSpec]) -> None:
    counts = Counter(s.difficulty for s in specs)
    assert counts["easy"] >= 18
    assert counts["medium"] >= 17
    assert counts["hard"] >= 10
    assert len(specs) >= 45


def test_topic_and_type_coverage(specs: list[ExerciseSpec]) -> None:
    topics = {t for s in specs for t in s.topics}
    missing = [area for area, names in TOPIC_AREAS.items() if not names & topics]
    assert not missing, f"topic areas without an exercise: {missing}"
    types = Counter(s.exercise_type for s in specs)
    assert types["debugging"] >= 3
    assert types["practical"] >= 3
    assert types["algorithm"] and types["data_structure"]
    # Some practical exercises are programs reading stdin.
    assert any("stdin" in t for s in specs for t in s.tests)


def test_each_exercise_is_complete(specs: list[ExerciseSpec]) -> None:
    for spec in specs:
        assert spec.language == "python", spec.slug
        assert len(spec.hints) == 3, spec.slug
        assert 2 <= len(spec.examples) <= 3, spec.slug
        assert len(spec.tests) >= 6, spec.slug
        assert spec.starter_code.strip() != spec.solution.strip(), spec.slug
        ast.parse(spec.solution)
        ast.parse(spec.starter_code)
        for test in [*spec.examples, *spec.tests]:
            if "call" in test:
                ast.literal_eval(test["expected"])


def test_hints_never_contain_the_solution(specs: list[ExerciseSpec]) -> None:
    for spec in specs:
        solution_lines = [
            line.strip()
            for line in spec.solution.splitlines()
            if len(line.strip()) >= 25 and not line.strip().startswith(('"""', "def ", "class ", "import ", "from "))
        ]
        for hint in spec.hints:
            assert spec.solution.strip() not in hint, spec.slug
            leaked = [line for line in solution_lines if line in hint]
            assert not leaked, f"{spec.slug}: hint quotes solution lines {leaked}"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _valid_toml(slug: str, **overrides: str) -> str:
    """A copy of reverse-words.toml as `slug`, with some fields replaced by raw TOML values."""
    spec = load_exercise(catalog.EXERCISES_DIR / "reverse-words.toml")
    values = {
        field.name: _toml_value(getattr(spec, field.name))
        for field in dataclasses.fields(spec)
        if field.name != "variants"  # other languages are tables, after these keys; reverse-words' are tested apart
    }
    values.update(slug=f'"{slug}"', **overrides)
    return "".join(f"{key} = {value}\n" for key, value in values.items())


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def test_validation_errors_name_the_file(tmp_path: Path) -> None:
    assert load_exercise(_write(tmp_path, "ok-one.toml", _valid_toml("ok-one"))).slug == "ok-one"

    call_test = '{name = "t", call = "f()", expected = "1"}'
    broken = {
        "bad-difficulty": ({"difficulty": '"trivial"'}, "difficulty must be one of"),
        "bad-type": ({"exercise_type": '"quiz"'}, "exercise_type must be one of"),
        "two-hints": ({"hints": '["one", "two"]'}, "exactly 3"),
        "few-tests": ({"tests": f"[{call_test}]"}, "at least 6 hidden tests"),
        "one-example": ({"examples": f"[{call_test}]"}, "2 or 3 examples"),
        "bad-expected": ({"tests": "[" + call_test.replace('"1"', '"oops("') + "]"}, "not a Python literal"),
        "mixed-test": ({"examples": '[{name = "m", call = "f()", expected = "1", stdin = ""}]'}, "a call test"),
        "no-solution": ({"solution": '""'}, "solution must be a non-empty string"),
    }
    for slug, (overrides, message) in broken.items():
        path = _write(tmp_path, f"{slug}.toml", _valid_toml(slug, **overrides))
        with pytest.raises(CatalogError, match=re.escape(f"{slug}.toml: ") + ".*" + re.escape(message)):
            load_exercise(path)

    with pytest.raises(CatalogError, match=re.escape("wrong-name.toml: slug")):
        load_exercise(_write(tmp_path, "wrong-name.toml", _valid_toml("other-slug")))
    missing = _valid_toml("missing-hints").replace("hints = ", "hintz = ")
    with pytest.raises(CatalogError, match=re.escape("missing-hints.toml: missing keys ['hints']")):
        load_exercise(_write(tmp_path, "missing-hints.toml", missing))


def test_a_language_part_may_be_a_file_of_its_own(tmp_path: Path) -> None:
    """`<language>/<slug>.toml` holds that language's table; a broken one, or one given twice, names its file."""
    javascript = load_exercise(catalog.EXERCISES_DIR / "reverse-words.toml").variants["javascript"]
    (tmp_path / "go").mkdir()
    go_part = 'starter_code = "func reverseWords(s string) string { return \\"\\" }"\nsolution = "func x() {}"\n'
    (tmp_path / "go" / "split-one.toml").write_text(go_part)
    neutral_table = '\n[neutral]\nfunction = "reverse_words"\n'
    spec = load_exercise(_write(tmp_path, "split-one.toml", _valid_toml("split-one") + neutral_table))
    assert spec.variants["go"].starter_code.startswith("func reverseWords")
    assert spec.variants["go"].tests == javascript.tests  # graded on the same neutral cases

    (tmp_path / "go" / "split-two.toml").write_text("starter_code = ")
    with pytest.raises(CatalogError, match=re.escape("go/split-two.toml: ")):
        load_exercise(_write(tmp_path, "split-two.toml", _valid_toml("split-two")))

    (tmp_path / "go" / "split-three.toml").write_text(go_part)
    inline = _valid_toml("split-three") + "\n[go]\n" + go_part
    with pytest.raises(CatalogError, match=re.escape("both a table of split-three.toml and a file of its own")):
        load_exercise(_write(tmp_path, "split-three.toml", inline))
