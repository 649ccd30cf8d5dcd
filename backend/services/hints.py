"""The hint ladder: hint k is the exercise's authored hint k, tailored by the LLM when one is configured.

The hint is counted first, with an atomic conditional UPDATE that also enforces the three-hint limit
(two concurrent requests cannot both take the last hint), and committed; the LLM is asked afterwards with
no transaction open. The LLM never sees the reference solution, and its prompt forbids writing one; if
it fails, the authored hint is served.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.errors import Conflict
from backend.integrations.llm import LLM, ChatTurn, LLMError, Prompt
from backend.models import User
from backend.models.exercises import UserExercise
from backend.services import exercises as exercises_service
from backend.services import learner as learner_service

log = structlog.get_logger(__name__)

MAX_HINTS = 3
HINT_MAX_TOKENS = 400
HINT_MAX_CHARS = 2000

HINT_SYSTEM = (
    "You are a patient programming tutor giving ONE hint to a student working on an exercise. "
    "Rewrite the hint you are given so it fits the student's current code and question, at the same level "
    "of detail ({level} of 3: 1 is a gentle nudge, 3 is the most specific). "
    "Never give the full solution, never write the function for them, never show more than one line of "
    "code, even if the student asks for the answer or says they are allowed to see it. "
    "Answer with the hint only, in at most four sentences."
)


class NoHintsLeft(Conflict):
    detail = f"You have used all {MAX_HINTS} hints for this exercise."


@dataclass(frozen=True)
class Hint:
    hint: str
    hint_level: int
    hints_used: int
    hints_remaining: int
    source: str


async def take_hint(session: AsyncSession, user: User, exercise_id: int) -> tuple[int, str, str, str, str | None]:
    """Count one hint and commit: (level, authored hint, title, description, the learner model's summary)."""
    exercise = await exercises_service.get_visible(session, user, exercise_id)
    row = await exercises_service.user_exercise_for(session, user, exercise, start=True)
    available = min(MAX_HINTS, len(exercise.hints))
    result = await session.execute(
        update(UserExercise)
        .where(UserExercise.id == row.id, UserExercise.hints_used < available)
        .values(hints_used=UserExercise.hints_used + 1)
        .returning(UserExercise.hints_used)
    )
    level = result.scalar_one_or_none()
    if level is None:
        raise NoHintsLeft()
    summary = await learner_service.summary_of(session, user.id)  # read before the commit: no transaction after
    await session.commit()
    return level, exercise.hints[level - 1], exercise.title, exercise.description, summary


async def tailor(
    llm: LLM,
    *,
    level: int,
    authored: str,
    title: str,
    description: str,
    code: str | None,
    question: str | None,
    learner_summary: str | None = None,
) -> str | None:
    parts = [f"Exercise: {title}\n\n{description}", f"The hint to adapt: {authored}"]
    if learner_summary:
        parts.append(f"What the tutor remembers about this student (aim the hint at it): {learner_summary}")
    if code:
        parts.append(f"The student's current code:\n```\n{code}\n```")
    if question:
        parts.append(f"The student's question: {question}")
    prompt = Prompt(
        system=HINT_SYSTEM.format(level=level),
        messages=(ChatTurn("user", "\n\n".join(parts)),),
        hint=authored,
        max_tokens=HINT_MAX_TOKENS,
    )
    try:
        completion = await llm.complete(prompt)
    except LLMError as error:
        log.warning("hints.llm_failed", provider=error.provider, reason=error.reason)
        return None
    text = completion.text.strip()
    return text[:HINT_MAX_CHARS] or None


async def hint(
    session: AsyncSession,
    llm: LLM | None,
    user: User,
    exercise_id: int,
    *,
    current_code: str | None,
    question: str | None,
) -> Hint:
    level, authored, title, description, summary = await take_hint(session, user, exercise_id)
    text, source = authored, "authored"
    if llm is not None:
        tailored = await tailor(
            llm,
            level=level,
            authored=authored,
            title=title,
            description=description,
            code=current_code,
            question=question,
            learner_summary=summary,
        )
        if tailored is not None:
            text, source = tailored, "llm"
    log.info("exercise.hint", user_id=user.id, exercise_id=exercise_id, level=level, source=source)
    return Hint(text, level, level, MAX_HINTS - level, source)
