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

import structlog
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.errors import ServiceUnavailable, UpstreamError
from backend.integrations.llm import LLM, ChatTurn, LLMError, Prompt
from backend.integrations.sandbox import Sandbox, SandboxUnavailable
from backend.models import User
from backend.models.exercises import Exercise
from backend.schemas.exercises import CallTest, Difficulty, ExerciseType, ProgramTest
from backend.services import difficulty as difficulty_service
from backend.services.chat import as_app_error
from backend.services.submissions import SandboxDown

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


class LLMNotConfigured(ServiceUnavailable):
    code = "llm_not_configured"
    detail = "Exercise generation needs an AI model, and none is configured on this server."


class GeneratedExerciseRejected(UpstreamError):
    code = "llm_error"
    detail = "The AI model wrote an exercise that did not pass its own checks. Try again."


class GeneratedExercise(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=20_000)
    starter_code: str = Field(max_length=50_000)
    solution: str = Field(min_length=1, max_length=50_000)
    difficulty: Difficulty
    exercise_type: ExerciseType
    topics: list[str] = Field(min_length=1, max_length=6)
    hints: list[str] = Field(min_length=3, max_length=3)
    tests: list[CallTest | ProgramTest] = Field(min_length=MIN_TESTS, max_length=50)


def _slug(title: str) -> str:
    words = re.findall(r"[a-z0-9]+", title.lower())[:SLUG_WORDS] or ["exercise"]
    return f"gen-{'-'.join(words)}-{secrets.token_hex(4)}"


async def ask(llm: LLM, *, topic: str, difficulty: str, exercise_type: str | None) -> GeneratedExercise:
    request = f"Write one {difficulty} Python exercise about {topic}."
    if exercise_type:
        request += f" Its exercise_type is {exercise_type}."
    prompt = Prompt(system=GENERATE_SYSTEM, messages=(ChatTurn("user", request),), max_tokens=GENERATE_MAX_TOKENS)
    try:
        completion = await llm.complete(prompt, json_mode=True)
    except LLMError as error:
        log.warning("generation.llm_failed", provider=error.provider, reason=error.reason)
        raise as_app_error(error) from error
    try:
        return GeneratedExercise.model_validate(json.loads(completion.text))
    except (ValueError, ValidationError):  # not JSON, or not the shape asked for
        log.warning("generation.rejected", reason="invalid_json")
        raise GeneratedExerciseRejected() from None


async def verify(sandbox: Sandbox, generated: GeneratedExercise, user_key: str | None = None) -> None:
    tests = [test.model_dump(exclude_none=True) for test in generated.tests]
    try:
        solution, starter = await asyncio.gather(
            sandbox.run(generated.solution, tests, user=user_key),
            sandbox.run(generated.starter_code or "pass", tests, user=user_key),
        )
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
) -> Exercise:
    if llm is None:
        raise LLMNotConfigured()
    level = difficulty or await difficulty_service.current(session, user)
    await session.commit()  # end the read transaction before the LLM and sandbox are awaited
    generated = await ask(llm, topic=topic or "a core Python skill", difficulty=level, exercise_type=exercise_type)
    await verify(sandbox, generated, f"user:{user.id}")
    tests = [test.model_dump(exclude_none=True) for test in generated.tests]
    exercise = Exercise(
        slug=_slug(generated.title),
        title=generated.title,
        description=generated.description,
        starter_code=generated.starter_code,
        language="python",
        difficulty=generated.difficulty,
        exercise_type=generated.exercise_type,
        topics=[topic.strip().lower()[:60] for topic in generated.topics if topic.strip()] or ["python"],
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
