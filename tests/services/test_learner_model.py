"""The learner model's pure rules: mistake kinds, mastery and the token-budgeted summary."""

from __future__ import annotations

from backend.integrations.llm.tokens import count_tokens
from backend.models.learner import LearnerTopic
from backend.services.learner import build_summary, mastery_of
from backend.services.learner.mistakes import classify, style_issues


def test_failing_tests_are_classified_by_kind() -> None:
    assert classify("empty list", "expected 0, got None", "total([])", "0", "None") == "edge_case_empty"
    assert classify("t", "IndexError: list index out of range", "first([])", "None", None) == "edge_case_empty"
    assert classify("t", "IndexError: list index out of range", "first([1])", "1", None) == "exception:IndexError"
    assert classify("t", "TypeError: can only concatenate", "f(1)", "2", None) == "wrong_type"
    assert classify("t", "expected 3, got 4", "count([1, 2, 3])", "3", "4") == "off_by_one"
    assert classify("t", "expected [1, 2], got [1]", "take(2)", "[1, 2]", "[1]") == "off_by_one"
    assert classify("t", "expected 3, got '3'", "f()", "3", "'3'") == "wrong_type"
    assert classify("t", "expected 3, got 7", "f()", "3", "7") == "wrong_result"
    assert classify("t", "timed out", "f()", "3", None) == "timeout"
    assert classify("t", "SyntaxError: invalid syntax (main.py, line 2)", "f()", "3", None) == "syntax_error"
    issues = dict(style_issues(["line 1: 'os' imported but unused"], ["long_one"], [], ["X"]))
    assert set(issues) == {"style:unused_code", "style:long_function", "style:naming"}


def topic(name: str, **counts: float) -> LearnerTopic:
    values = {"attempts": 1, "failures": 0, "exercises_attempted": 1, "exercises_completed": 1}
    values |= {"grade_total": 100.0, "hints_used": 0, "time_spent_seconds": 600} | counts
    row = LearnerTopic(user_id=1, topic=name, **values)
    row.mastery = mastery_of(row)
    return row


def test_mastery_falls_with_hints_failures_and_unfinished_exercises() -> None:
    assert topic("a").mastery == 1.0
    assert topic("a", hints_used=3).mastery == 0.76
    assert topic("a", failures=2, attempts=3).mastery == 0.8
    assert topic("a", exercises_attempted=2).mastery == 0.5
    assert topic("a", exercises_completed=0).mastery == 0.0


def test_summary_keeps_within_its_token_budget_dropping_strengths_first() -> None:
    topics = [topic(f"strong topic {n}") for n in range(3)] + [topic("recursion", exercises_completed=0, failures=1)]
    counts = {"edge_case_empty": 5, "exception:IndexError": 3, "style:naming": 2, "timeout": 1}
    full = build_summary(topics, counts)
    assert "Weak topics: recursion" in full and "IndexError exceptions (in 3 submissions)" in full
    assert "timeout" not in full  # seen once: not recurring
    short = build_summary(topics, counts, budget=30)
    assert count_tokens(short) <= 30 and "recursion" in short and "strong topic" not in short
