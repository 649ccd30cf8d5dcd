"""What an exercise is made of, whoever writes it (the catalog, an admin, the LLM): its difficulty and type,
and its tests in the two formats of docs/API.md ("Exercise tests").

The API's bodies (`schemas/exercises.py`) and the generation service both validate with these, so a test
an admin may write and a test the LLM may write are the same thing.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from backend.content import neutral

Difficulty = Literal["easy", "medium", "hard"]
ExerciseType = Literal["algorithm", "data_structure", "debugging", "practical"]

CODE_MAX = 50_000  # characters of code, or of one test's field


class CallTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    setup: str | None = Field(None, max_length=CODE_MAX)
    call: str = Field(min_length=1, max_length=CODE_MAX)
    expected: str = Field(max_length=CODE_MAX, description="A Python literal compared with `==`.")


class ProgramTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    stdin: str = Field("", max_length=CODE_MAX)
    expected_stdout: str = Field(max_length=CODE_MAX)


class VisibleExample(NamedTuple):
    """A visible test as the student (and the tutor's prompt) reads it (docs/API.md, "Exercise tests")."""

    input: str
    expected_output: str


def visible_example(test: dict[str, Any], language: str = "python") -> VisibleExample:
    """`test` (any stored format) as its input and expected output; a language-neutral case (`args`/`ops`)
    reads in the exercise's language."""
    if "input" in test and "expected_output" in test:
        return VisibleExample(str(test["input"]), str(test["expected_output"]))
    if "args" in test or "ops" in test:
        return VisibleExample(neutral.display_call(test, language), str(test.get("expected", "")))
    if "call" in test:
        setup = test.get("setup")
        return VisibleExample(f"{setup}\n{test['call']}" if setup else test["call"], str(test.get("expected", "")))
    return VisibleExample(str(test.get("stdin", "")), str(test.get("expected_stdout", "")))
