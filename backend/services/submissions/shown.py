"""What a student may see of a run: hidden tests stay hidden (docs/SECURITY.md).

The visible examples run before any hidden test, and show their input, expected value and output only if
they began before any hidden test did; a hidden test shows its name, pass/fail and the kind of failure,
never its input, its expected value, or anything the code printed or raised while it ran.
"""

from __future__ import annotations

from typing import Any

from backend.integrations.sandbox import RunResult, TestOutcome
from backend.integrations.sandbox.base import DIFFERENT, INVALID, NOT_FINISHED, OUTPUT_LIMIT, TIMED_OUT
from backend.models.exercises import Exercise

HIDDEN_MESSAGES = {
    TIMED_OUT: "This hidden test ran out of time.",
    DIFFERENT: "This hidden test gave a different result.",
    OUTPUT_LIMIT: "This hidden test printed more than the output limit.",
    NOT_FINISHED: "This hidden test did not run to the end.",
    INVALID: "This hidden test could not be checked (a fault in the exercise, not in your code).",
}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _key(test: dict[str, Any]) -> tuple[str, ...]:
    """What identifies a test's input, in either format (a Python call, a neutral call or op sequence, a
    program): a hidden test is shown in full only when an example has the very same input."""
    return tuple(str(test.get(key) or "") for key in ("setup", "call", "stdin", "function", "args", "ops"))


def _hidden_message(outcome: TestOutcome) -> str | None:
    """What a hidden test may say: pass, or the kind of failure (`TestOutcome.failure`), never its input,
    expected value, or anything the code printed or raised while it ran."""
    if outcome.passed:
        return None
    failure = outcome.failure or ""
    if failure.startswith("raised "):
        return f"This hidden test {failure}."
    return HIDDEN_MESSAGES.get(failure, HIDDEN_MESSAGES[DIFFERENT])


def visible_first(exercise: Exercise) -> list[int]:
    """The order to run the tests in: the visible examples before any hidden test, so nothing a hidden
    test handed to the code (kept in a global, a thread, a file) can surface in an example's output."""
    visible = {_key(example) for example in exercise.examples}
    return sorted(range(len(exercise.tests)), key=lambda index: _key(exercise.tests[index]) not in visible)


def _shown(exercise: Exercise, order: list[int], run: RunResult) -> set[int]:
    """Indexes (in run order) of the tests whose details and output may be shown: visible examples that
    the code was given before it saw any hidden test."""
    visible = {_key(example) for example in exercise.examples}
    shown = set()
    for position in run.order:  # the order the tests began in
        if not 0 <= position < len(order) or _key(exercise.tests[order[position]]) not in visible:
            break
        shown.add(position)
    began = set(run.order)
    # A visible test that never began printed nothing and holds no hidden data.
    return shown | {p for p in range(len(order)) if p not in began and _key(exercise.tests[order[p]]) in visible}


def result_rows(exercise: Exercise, run: RunResult, order: list[int] | None = None) -> list[dict[str, Any]]:
    """Per-test results in the exercise's order (`order[i]` = the exercise's index of the run's test i).

    A hidden test shows its name, pass/fail and the kind of failure only (its input and expected value are
    the exercise's secret, and whatever it printed or raised may repeat them); the visible examples show
    everything."""
    order = order if order is not None else list(range(len(exercise.tests)))
    shown = _shown(exercise, order, run)
    by_test = {order[position]: (position, outcome) for position, outcome in enumerate(run.results)}
    rows = []
    for index in range(len(exercise.tests)):
        if index not in by_test:
            continue
        position, outcome = by_test[index]
        row: dict[str, Any] = {"name": outcome.name, "passed": bool(outcome.passed)}
        if position in shown:
            row |= {
                "message": _text(outcome.message),
                "input": _text(outcome.input),
                "expected": _text(outcome.expected),
                "actual": _text(outcome.actual),
            }
        else:
            row["message"] = _hidden_message(outcome)
        rows.append(row)
    return rows


def shown_output(exercise: Exercise, run: RunResult, order: list[int] | None = None) -> tuple[str, str]:
    """stdout and stderr a student may see: from importing the code, and from the visible examples."""
    order = order if order is not None else list(range(len(exercise.tests)))
    return run.output_of(_shown(exercise, order, run))
