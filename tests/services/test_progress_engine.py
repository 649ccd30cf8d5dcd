"""The progress engine on both databases: streaks by local calendar day, idempotency, achievements
awarded exactly once (also under concurrent completions), topic levels and the reviews hook."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from quart import Quart
from quart.testing import QuartClient
from sqlalchemy import func, select

from backend.content.achievements import ACHIEVEMENTS
from backend.models import User
from backend.models.progress import (
    ACHIEVEMENT_CATEGORIES,
    Achievement,
    DailyActivity,
    ExerciseCompletion,
    TopicSkill,
    UserProgress,
)
from backend.services import progress as progress_service
from backend.services.achievements import METRICS, metric_values, seed_achievements
from backend.services.progress import next_streak, topic_level
from tests.helpers import register
from tests.services.support import complete, get_user, seed, set_user, unlocked_slugs

LA = ZoneInfo("America/Los_Angeles")


def local(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone)  # type: ignore[misc]


@pytest.fixture
async def user_id(app: Quart, client: QuartClient) -> int:
    await seed(app)
    return (await register(client))["user"]["id"]


async def streak(app: Quart, user_id: int) -> tuple[int, int]:
    user = await get_user(app, user_id)
    return user.current_streak, user.longest_streak


# --- streak rules ----------------------------------------------------------------------------------


def test_next_streak_rules() -> None:
    monday = date(2026, 11, 23)
    assert next_streak(0, None, monday) == 1
    assert next_streak(4, monday, monday) == 4  # same day: no change
    assert next_streak(4, monday, monday + timedelta(days=1)) == 5  # next day: +1
    assert next_streak(4, monday, monday + timedelta(days=2)) == 1  # a gap: restart
    assert next_streak(4, monday, monday - timedelta(days=1)) == 4  # a late event for an earlier day


async def test_late_evening_then_just_after_midnight_local_is_two_days(app: Quart, user_id: int) -> None:
    await set_user(app, user_id, timezone="America/Los_Angeles")
    first = await complete(app, user_id, at=local(LA, 2026, 11, 24, 23, 30))
    second = await complete(app, user_id, at=local(LA, 2026, 11, 25, 0, 30))
    assert (first.streak_after, first.extended) == (1, True)
    assert (second.streak_before, second.streak_after, second.extended) == (1, 2, True)
    assert await streak(app, user_id) == (2, 2)


async def test_utc_midnight_is_not_the_boundary_for_los_angeles(app: Quart, user_id: int) -> None:
    await set_user(app, user_id, timezone="America/Los_Angeles")
    # 23:30 and 00:30 UTC are 15:30 and 16:30 on the same Los Angeles day (PST, UTC-8).
    await complete(app, user_id, at=datetime(2026, 11, 24, 23, 30, tzinfo=UTC))
    second = await complete(app, user_id, at=datetime(2026, 11, 25, 0, 30, tzinfo=UTC))
    assert (second.streak_after, second.extended) == (1, False)
    assert await streak(app, user_id) == (1, 1)


async def test_same_instants_are_two_days_for_a_utc_user(app: Quart, user_id: int) -> None:
    await complete(app, user_id, at=datetime(2026, 11, 24, 23, 30, tzinfo=UTC))
    await complete(app, user_id, at=datetime(2026, 11, 25, 0, 30, tzinfo=UTC))
    assert await streak(app, user_id) == (2, 2)


async def test_day_east_of_utc_starts_before_utc_midnight(app: Quart, user_id: int) -> None:
    await set_user(app, user_id, timezone="Asia/Tokyo")
    await complete(app, user_id, at=datetime(2026, 11, 24, 14, 0, tzinfo=UTC))  # 23:00 on the 24th in Tokyo
    await complete(app, user_id, at=datetime(2026, 11, 24, 15, 30, tzinfo=UTC))  # 00:30 on the 25th
    assert await streak(app, user_id) == (2, 2)


async def test_spring_forward_day_counts_as_one_day(app: Quart, user_id: int) -> None:
    # 2026-03-08 in Los Angeles has 23 hours (02:00 PST jumps to 03:00 PDT).
    await set_user(app, user_id, timezone="America/Los_Angeles")
    await complete(app, user_id, at=local(LA, 2026, 3, 7, 23, 30))
    await complete(app, user_id, at=local(LA, 2026, 3, 8, 0, 30))  # before the change
    await complete(app, user_id, at=local(LA, 2026, 3, 8, 23, 30))  # after it: still the 8th
    assert await streak(app, user_id) == (2, 2)
    await complete(app, user_id, at=local(LA, 2026, 3, 9, 0, 15))
    assert await streak(app, user_id) == (3, 3)


async def test_fall_back_day_counts_as_one_day(app: Quart, user_id: int) -> None:
    # 2026-11-01 in Los Angeles has 25 hours; 01:30 happens twice.
    await set_user(app, user_id, timezone="America/Los_Angeles")
    await complete(app, user_id, at=datetime(2026, 11, 1, 8, 30, tzinfo=UTC))  # 01:30 PDT
    await complete(app, user_id, at=datetime(2026, 11, 1, 9, 30, tzinfo=UTC))  # 01:30 PST
    await complete(app, user_id, at=local(LA, 2026, 11, 1, 23, 59))
    assert await streak(app, user_id) == (1, 1)
    await complete(app, user_id, at=local(LA, 2026, 11, 2, 0, 1))
    assert await streak(app, user_id) == (2, 2)
    async with app.extensions["db_session_factory"]() as session:
        days = list(await session.scalars(select(DailyActivity).where(DailyActivity.user_id == user_id)))
    assert {(day.date, day.exercises_completed) for day in days} == {(date(2026, 11, 1), 3), (date(2026, 11, 2), 1)}


async def test_gap_restarts_streak_and_longest_is_kept(app: Quart, user_id: int) -> None:
    start = datetime(2026, 11, 1, 12, tzinfo=UTC)
    for day in range(4):
        await complete(app, user_id, at=start + timedelta(days=day))
    assert await streak(app, user_id) == (4, 4)
    restarted = await complete(app, user_id, at=start + timedelta(days=6))
    assert (restarted.streak_before, restarted.streak_after, restarted.longest_streak) == (4, 1, 4)
    await complete(app, user_id, at=start + timedelta(days=7))
    assert await streak(app, user_id) == (2, 4)


# --- idempotency and counters ----------------------------------------------------------------------


async def test_same_completion_key_is_counted_once(app: Quart, user_id: int) -> None:
    first = await complete(app, user_id, completion_key="submission-42", time_spent_seconds=120)
    again = await complete(app, user_id, completion_key="submission-42", time_spent_seconds=120)
    assert first.recorded and first.achievements_unlocked
    assert not again.recorded and again.achievements_unlocked == [] and not again.extended
    user = await get_user(app, user_id)
    assert user.exercises_completed == 1
    async with app.extensions["db_session_factory"]() as session:
        progress = await session.get_one(UserProgress, user_id)
        day_rows = list(await session.scalars(select(DailyActivity).where(DailyActivity.user_id == user_id)))
    assert progress.total_time_spent_seconds == 120
    assert [row.exercises_completed for row in day_rows] == [1]


async def test_completion_updates_counters_topics_and_day(app: Quart, user_id: int) -> None:
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    await complete(app, user_id, at=at, grade=90, topics=["Loops", " strings ", "loops"], time_spent_seconds=60)
    await complete(app, user_id, at=at, grade=70, topics=["loops"], time_spent_seconds=40)
    async with app.extensions["db_session_factory"]() as session:
        progress = await session.get_one(UserProgress, user_id)
        skills = {s.topic: s for s in await session.scalars(select(TopicSkill).where(TopicSkill.user_id == user_id))}
        [day] = await session.scalars(select(DailyActivity).where(DailyActivity.user_id == user_id))
    assert progress.total_time_spent_seconds == 100 and progress.grade_total == 160
    assert set(skills) == {"loops", "strings"}
    assert skills["loops"].exercises_completed == 2 and skills["strings"].exercises_completed == 1
    assert (day.date, day.exercises_completed, day.time_spent_seconds, day.grade_total) == (at.date(), 2, 100, 160)


def test_topic_levels_by_count_and_average_never_go_down() -> None:
    assert topic_level(4, 100) == "beginner"
    assert topic_level(5, 60) == "intermediate"
    assert topic_level(5, 59.9) == "beginner"
    assert topic_level(15, 75) == "advanced"
    assert topic_level(30, 85) == "expert"
    assert topic_level(40, 70) == "intermediate"
    assert topic_level(40, 70, current="advanced") == "advanced"


async def test_topic_reaches_intermediate_after_five_good_completions(app: Quart, user_id: int) -> None:
    for _ in range(5):
        await complete(app, user_id, topics=["recursion"], grade=65)
    async with app.extensions["db_session_factory"]() as session:
        skill = await session.scalar(select(TopicSkill).where(TopicSkill.user_id == user_id))
    assert skill is not None and (skill.level, skill.exercises_completed) == ("intermediate", 5)


# --- achievements ----------------------------------------------------------------------------------


async def test_achievements_are_awarded_once_when_their_target_is_reached(app: Quart, user_id: int) -> None:
    first = await complete(app, user_id, hints_used=0, grade=100, difficulty="hard")
    assert {a.slug for a in first.achievements_unlocked} == {
        "first_exercise",
        "no_hints",
        "perfect_score",
        "hard_exercise",
    }
    second = await complete(app, user_id, hints_used=0, grade=100)
    assert second.achievements_unlocked == []
    for _ in range(7):
        await complete(app, user_id)
    tenth = await complete(app, user_id)
    assert [a.slug for a in tenth.achievements_unlocked] == ["exercises_10"]
    assert await unlocked_slugs(app, user_id) == sorted(
        ["first_exercise", "no_hints", "perfect_score", "hard_exercise", "exercises_10"]
    )


async def test_streak_achievement_unlocks_on_the_seventh_day(app: Quart, user_id: int) -> None:
    start = datetime(2026, 11, 1, 18, tzinfo=UTC)
    results = [await complete(app, user_id, at=start + timedelta(days=day)) for day in range(7)]
    assert "streak_3" in {a.slug for a in results[2].achievements_unlocked}
    assert [a.slug for a in results[6].achievements_unlocked] == ["streak_7"]


async def test_habit_achievements_use_local_time(app: Quart, user_id: int) -> None:
    await set_user(app, user_id, timezone="America/Los_Angeles")
    # 14:30 UTC is 06:30 in Los Angeles: early, although it is afternoon in UTC.
    result = await complete(app, user_id, at=datetime(2026, 11, 20, 14, 30, tzinfo=UTC))
    assert "early_bird" in {a.slug for a in result.achievements_unlocked}


async def test_concurrent_completions_are_exact_and_award_once(app: Quart, user_id: int) -> None:
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    results = await asyncio.gather(*(complete(app, user_id, at=at, hints_used=0) for _ in range(8)))
    user = await get_user(app, user_id)
    assert user.exercises_completed == 8 and user.current_streak == 1
    awarded = [a.slug for result in results for a in result.achievements_unlocked]
    assert awarded.count("first_exercise") == 1 and awarded.count("no_hints") == 1
    assert sum(result.extended for result in results) == 1
    async with app.extensions["db_session_factory"]() as session:
        [day] = await session.scalars(select(DailyActivity).where(DailyActivity.user_id == user_id))
        progress = await session.get_one(UserProgress, user_id)
    assert day.exercises_completed == 8 and progress.no_hint_completions == 8
    assert await unlocked_slugs(app, user_id) == ["first_exercise", "no_hints"]


async def test_concurrent_duplicates_of_one_completion_count_once(app: Quart, user_id: int) -> None:
    results = await asyncio.gather(*(complete(app, user_id, completion_key="submission-7") for _ in range(5)))
    assert sum(result.recorded for result in results) == 1
    async with app.extensions["db_session_factory"]() as session:
        count = await session.scalar(select(func.count()).select_from(ExerciseCompletion))
    assert count == 1 and (await get_user(app, user_id)).exercises_completed == 1


async def test_reviews_unlock_review_achievements(app: Quart, user_id: int) -> None:
    unlocked: list[str] = []
    for _ in range(5):
        async with app.extensions["db_session_factory"]() as session:
            user = await session.get_one(User, user_id)
            unlocked += [a.slug for a in await progress_service.record_review(session, user, at=datetime.now(UTC))]
            await session.commit()
    assert unlocked == ["first_review", "reviews_5"]


async def test_submissions_are_counted_on_their_local_day(app: Quart, user_id: int) -> None:
    await set_user(app, user_id, timezone="America/Los_Angeles")
    async with app.extensions["db_session_factory"]() as session:
        user = await session.get_one(User, user_id)
        await progress_service.record_submission(session, user, at=datetime(2026, 11, 21, 3, tzinfo=UTC))
        await session.commit()
    async with app.extensions["db_session_factory"]() as session:
        [day] = await session.scalars(select(DailyActivity).where(DailyActivity.user_id == user_id))
    assert (day.date, day.submissions, day.exercises_completed) == (date(2026, 11, 20), 1, 0)


# --- the catalog -----------------------------------------------------------------------------------


async def test_seeding_is_idempotent_and_updates_changed_entries(app: Quart) -> None:
    factory = app.extensions["db_session_factory"]
    async with factory() as session:
        first = await seed_achievements(session)
        await session.commit()
    assert first.created == len(ACHIEVEMENTS)
    async with factory() as session:
        row = await session.scalar(select(Achievement).where(Achievement.slug == "streak_7"))
        assert row is not None
        row.title = "Old title"
        await session.commit()
    async with factory() as session:
        again = await seed_achievements(session)
        await session.commit()
        title = await session.scalar(select(Achievement.title).where(Achievement.slug == "streak_7"))
        count = await session.scalar(select(func.count()).select_from(Achievement))
    assert (again.created, again.updated, title, count) == (0, 1, "Week Warrior", len(ACHIEVEMENTS))


def test_catalog_has_the_contract_slugs_and_unique_slugs() -> None:
    slugs = [spec.slug for spec in ACHIEVEMENTS]
    assert len(slugs) == len(set(slugs))
    required = {"first_exercise", "no_hints", "perfect_score"}
    required |= {f"exercises_{n}" for n in (10, 50, 100, 500)} | {f"streak_{n}" for n in (7, 30, 100, 365)}
    required |= {f"reviews_{n}" for n in (5, 20, 50)}
    assert required <= set(slugs)
    assert {spec.metric for spec in ACHIEVEMENTS} <= METRICS
    assert {spec.category for spec in ACHIEVEMENTS} <= set(ACHIEVEMENT_CATEGORIES)


async def test_metric_values_cover_every_metric(app: Quart, user_id: int) -> None:
    async with app.extensions["db_session_factory"]() as session:
        user = await session.get_one(User, user_id)
        assert set(await metric_values(session, user, None)) == METRICS
