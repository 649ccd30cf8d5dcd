"""The grading rubric's measures and formula, without the sandbox."""

from __future__ import annotations

from backend.integrations.sandbox.analysis import TOO_DEEP
from backend.services import grading

TIDY = "def total_price(items):\n    return sum(item.price for item in items)\n"
DEEP = """def deep(values):
    for value in values:
        if value:
            for other in values:
                if other:
                    while other:
                        other -= 1
    return values
"""


def test_grade_formula_bounds() -> None:
    assert grading.grade_of(1.0, 1.0, 1.0, 1.0) == 100
    assert grading.grade_of(0.0, 1.0, 1.0, 1.0) == 0  # failing every test scores 0 however tidy
    assert grading.grade_of(0.5, 1.0, 1.0, 1.0) == 50
    assert grading.grade_of(1.0, 0.0, 0.0, 0.0) == 40
    assert grading.grade_of(1.0, 0.5, 1.0, 1.0) == 85


def test_lint_reports_unused_names_with_lines() -> None:
    findings = grading.lint("import os\n\ndef solve():\n    unused = 1\n    return 2\n")
    assert findings[0].startswith("line 1:") and "os" in findings[0]
    assert any("unused" in finding for finding in findings)
    assert grading.style_score(findings) < 1.0
    assert grading.lint(TIDY) == [] and grading.style_score([]) == 1.0
    assert grading.lint("def broken(:\n") == []  # the run reports syntax errors, not the linter


def test_static_quality_measures_length_nesting_and_names() -> None:
    assert grading.static_quality(TIDY).score == 1.0
    deep = grading.static_quality(DEEP)
    assert deep.deep_functions == ["deep"] and deep.score < 1.0
    long_body = "def long_one():\n" + "".join(f"    step_{n} = {n}\n" for n in range(40)) + "    return 0\n"
    assert grading.static_quality(long_body).long_functions == ["long_one"]
    named = grading.static_quality("def DoThing(Q):\n    tmpVar = Q\n    return tmpVar\n")
    assert {"DoThing", "Q", "tmpVar"} <= set(named.poor_names)
    assert grading.static_quality("def broken(:\n").score == 0.0


def test_code_nested_too_deeply_to_check_costs_style_and_quality_but_raises_nothing() -> None:
    """Deeper than the parser (MemoryError), its tree's construction or our own walk (RecursionError) can
    go: never an exception out of grading (that was a 500 leaving the submission `running`), and no free
    marks for being impossible to check."""
    deep_function = "def f(x):\n    return " + "(" * 90 + "x" + ")" * 90 + " + " + "-" * 3000 + "x\n"
    for code in ("x = " + "1 + " * 12000 + "1\n", "x = " + "-" * 20000 + "1\n", deep_function):
        assert grading.lint(code) == [TOO_DEEP]
        assert grading.style_score(grading.lint(code)) < 1.0
        assert grading.static_quality(code).score == 0.0


def test_efficiency_compares_with_reference_and_tolerates_start_up() -> None:
    assert grading.efficiency_score(40, 30) == 1.0
    assert grading.efficiency_score(110, 30) == 1.0  # within 2x + 50 ms
    assert grading.efficiency_score(1100, 30) == 0.1
    assert grading.efficiency_score(500, None) == 1.0  # nothing to compare against
