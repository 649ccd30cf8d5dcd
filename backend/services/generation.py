"""Exercises written by the LLM, accepted only when the sandbox proves them sound.

The LLM answers in JSON mode; the answer is validated with pydantic, then the reference solution must
pass all of its own tests and the starter code must not (an exercise already solved by its starter is
no exercise). A rejected answer is a 502 `llm_error`: the fault is the upstream model's, and asking
again may succeed. The exercise is private to its author. Nothing here holds a transaction open: the
caller's reads are committed before the LLM is asked, and the insert is the last step.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Awaitable
from typing import Annotated, Any

import structlog
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.content.shapes import CODE_MAX, CallTest, Difficulty, ExerciseType, ProgramTest
from backend.errors import ServiceUnavailable, UpstreamError, ValidationFailed
from backend.integrations.llm import LLM, ChatTurn, LLMError, Prompt
from backend.integrations.sandbox import RunResult, Sandbox, SandboxUnavailable, languages
from backend.integrations.sandbox.languages import PYTHON_LANGUAGE, Language
from backend.models import User
from backend.models.exercises import Exercise
from backend.services import difficulty as difficulty_service
from backend.services.chat import as_app_error
from backend.services.submissions import SandboxDown
from backend.text import strip_html

log = structlog.get_logger(__name__)

GENERATE_MAX_TOKENS = 4000
MIN_TESTS = 6
VISIBLE_EXAMPLES = 2
SLUG_WORDS = 6

GENERATE_SYSTEM = (
    "You write programming exercises for a learning platform. Answer with ONE JSON object and nothing "
    'else, with exactly these keys: "title" (short), "description" (markdown, states the function '
    'signature and the task), "starter_code" (a stub that does NOT solve the task, e.g. a function whose '
    'body is `pass`), "solution" (a correct reference solution), "difficulty" ("easy", "medium" or '
    '"hard"), "exercise_type" ("algorithm", "data_structure", "debugging" or "practical"), "topics" '
    '(1-4 short lowercase words), "hints" (exactly 3 strings, each more specific than the last, none '
    f'giving the solution away), "tests" (at least {MIN_TESTS}, including edge cases). Each test is either '
    '{"name": "...", "call": "a Python expression calling the solution", "expected": "a Python literal"} '
    '(optionally with "setup": "statements run first"), or {"name": "...", "stdin": "...", '
    '"expected_stdout": "..."} for a program reading standard input. The first two tests are shown to the '
    "student as examples."
)


NEUTRAL_TESTS = (
    f'"tests" (at least {MIN_TESTS}, including edge cases). Each test is either {{"name": "...", "function": '
    '"the function\'s name exactly as in your code", "args": [the arguments as a JSON array], "expected": the '
    'expected return value as JSON}}, or {{"name": "...", "stdin": "...", "expected_stdout": "..."}} for a '
    "program reading standard input. Values are plain JSON: numbers, strings, booleans, null, arrays and "
    "objects with string keys. The first two tests are shown to the student as examples."
)


SCRIPT_SHAPE = "a plain script defining the function, no imports or exports needed; a program reads standard input"
# What a submission looks like where a plain script is not one (docs/LANGUAGES.md, each language's section).
CODE_SHAPES = {
    "java": "one file Solution.java: the function is a public static method of `public class Solution`, a class"
    " exercise's class a top-level class of that file; a program is Solution's main reading System.in",
    "go": "one file in `package main`: the function is a top-level, non-generic func with the tests' name, a class"
    " exercise's class a struct made by a func `new<Class>` whose exported methods are the operations (`IsEmpty`"
    " for is_empty); a program is `func main()` reading os.Stdin; no net package",
}


def system_prompt(language: Language) -> str:
    """The Python prompt as it always was; other languages get their code in that language and tests as
    language-neutral JSON (the same format as the catalog's, see content/neutral.py)."""
    if language.name == "python":
        return GENERATE_SYSTEM
    head = GENERATE_SYSTEM[: GENERATE_SYSTEM.index('"tests" (at least')]
    return (
        head.replace("e.g. a function whose body is `pass`", 'e.g. a function that throws "write your solution here"')
        + NEUTRAL_TESTS
        + f" starter_code and solution are {language.title} ({CODE_SHAPES.get(language.name, SCRIPT_SHAPE)})."
    )


class UnknownLanguage(ValidationFailed):
    detail = "Exercises can only be generated in a language graded here (GET /api/v1/exercises/languages)."


class LLMNotConfigured(ServiceUnavailable):
    code = "llm_not_configured"
    detail = "Exercise generation needs an AI model, and none is configured on this server."


class GeneratedExerciseRejected(UpstreamError):
    code = "llm_error"
    detail = "The AI model wrote an exercise that did not pass its own checks. Try again."


class NeutralCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    function: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    args: list[Any] = Field(max_length=50)
    expected: Any

    def as_case(self) -> dict[str, str]:
        return {
            "name": self.name,
            "function": self.function,
            "args": json.dumps(self.args),
            "expected": json.dumps(self.expected),
        }


# The model is steered by the student's `topic`: its title and topics are plain text like every other
# title and topic (markup stripped, character references decoded first), never stored as it came.
PlainText = Annotated[str, BeforeValidator(strip_html)]


class GeneratedExercise(BaseModel):
    title: PlainText = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=20_000)
    starter_code: str = Field(max_length=CODE_MAX)
    solution: str = Field(min_length=1, max_length=CODE_MAX)
    difficulty: Difficulty
    exercise_type: ExerciseType
    topics: list[PlainText] = Field(min_length=1, max_length=6)
    hints: list[str] = Field(min_length=3, max_length=3)
    tests: list[CallTest | ProgramTest] = Field(min_length=MIN_TESTS, max_length=50)


class GeneratedInLanguage(GeneratedExercise):
    """Another language's exercise: tests as neutral JSON (graded by the server, as for the catalog)."""

    tests: list[NeutralCall | ProgramTest] = Field(min_length=MIN_TESTS, max_length=50)  # type: ignore[assignment]

    def cases(self) -> list[dict[str, str]]:
        return [
            test.as_case() if isinstance(test, NeutralCall) else test.model_dump(exclude_none=True)
            for test in self.tests
        ]


def _slug(title: str) -> str:
    words = re.findall(r"[a-z0-9]+", title.lower())[:SLUG_WORDS] or ["exercise"]
    return f"gen-{'-'.join(words)}-{secrets.token_hex(4)}"


async def ask(
    llm: LLM, *, topic: str, difficulty: str, exercise_type: str | None, language: Language = PYTHON_LANGUAGE
) -> GeneratedExercise:
    request = f"Write one {difficulty} {language.title} exercise about {topic}."
    if exercise_type:
        request += f" Its exercise_type is {exercise_type}."
    prompt = Prompt(
        system=system_prompt(language), messages=(ChatTurn("user", request),), max_tokens=GENERATE_MAX_TOKENS
    )
    try:
        completion = await llm.complete(prompt, json_mode=True)
    except LLMError as error:
        log.warning("generation.llm_failed", provider=error.provider, reason=error.reason)
        raise as_app_error(error) from error
    try:
        model = GeneratedExercise if language.name == "python" else GeneratedInLanguage
        return model.model_validate(json.loads(completion.text))
    except (ValueError, ValidationError):  # not JSON, or not the shape asked for
        log.warning("generation.rejected", reason="invalid_json")
        raise GeneratedExerciseRejected() from None


def stored_tests(generated: GeneratedExercise) -> list[dict[str, Any]]:
    if isinstance(generated, GeneratedInLanguage):
        return generated.cases()
    return [test.model_dump(exclude_none=True) for test in generated.tests]


async def verify(
    sandbox: Sandbox, generated: GeneratedExercise, user_key: str | None = None, language: str = "python"
) -> None:
    tests = stored_tests(generated)

    def run(code: str) -> Awaitable[RunResult]:
        if language == "python":
            return sandbox.run(code, tests, user=user_key)
        return languages.grade_in(sandbox, language, code, tests, user=user_key)

    try:
        solution, starter = await asyncio.gather(run(generated.solution), run(generated.starter_code or "pass"))
    except SandboxUnavailable:
        raise SandboxDown("The sandbox is unavailable, so the exercise could not be checked.") from None
    if solution.status != "passed":
        log.warning("generation.rejected", reason="solution_fails", passed=solution.tests_passed)
        raise GeneratedExerciseRejected()
    if starter.status == "passed":
        log.warning("generation.rejected", reason="starter_passes")
        raise GeneratedExerciseRejected()


async def generate(
    session: AsyncSession,
    sandbox: Sandbox,
    llm: LLM | None,
    user: User,
    *,
    topic: str | None,
    difficulty: str | None,
    exercise_type: str | None,
    language: str | None = None,
) -> Exercise:
    wanted = languages.offered(sandbox).get((language or "python").strip().lower())
    if wanted is None:
        raise UnknownLanguage()
    if llm is None:
        raise LLMNotConfigured()
    level = difficulty or await difficulty_service.current(session, user)
    await session.commit()  # end the read transaction before the LLM and sandbox are awaited
    generated = await ask(
        llm,
        topic=topic or f"a core {wanted.title} skill",
        difficulty=level,
        exercise_type=exercise_type,
        language=wanted,
    )
    await verify(sandbox, generated, f"user:{user.id}", wanted.name)
    tests = stored_tests(generated)
    exercise = Exercise(
        slug=_slug(generated.title),
        title=generated.title,
        description=generated.description,
        starter_code=generated.starter_code,
        language=wanted.name,
        difficulty=generated.difficulty,
        exercise_type=generated.exercise_type,
        topics=[topic.strip().lower()[:60] for topic in generated.topics if topic.strip()] or [wanted.name],
        examples=tests[:VISIBLE_EXAMPLES],
        tests=tests,
        hints=generated.hints,
        solution=generated.solution,
        author_id=user.id,
        visibility="private",
        generated_by_ai=True,
    )
    session.add(exercise)
    await session.flush()
    log.info("exercise.generated", exercise_id=exercise.id, user_id=user.id)
    return exercise
