"""Progress, history, achievements and the progress export through the real app, on both stacks."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from quart import Quart
from quart.testing import QuartClient

from backend.content.achievements import ACHIEVEMENTS
from tests.helpers import bearer, register
from tests.services.support import complete, seed

USERS = "/api/v1/users"


@pytest.fixture
async def seeded(app: Quart) -> Quart:
    await seed(app)
    return app


async def signed_up(client: QuartClient, timezone: str | None = None) -> tuple[int, dict[str, str]]:
    body = await register(client)
    headers = bearer(body)
    if timezone is not None:
        response = await client.patch(f"{USERS}/me", json={"timezone": timezone}, headers=headers)
        assert response.status_code == 200
    return body["user"]["id"], headers


def local_today(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


async def test_progress_of_a_new_user_is_empty(seeded: Quart, client: QuartClient) -> None:
    _, headers = await signed_up(client)
    response = await client.get(f"{USERS}/me/progress", headers=headers)
    assert response.status_code == 200
    assert await response.get_json() == {
        "exercises_completed": 0,
        "current_streak": 0,
        "longest_streak": 0,
        "total_time_spent_seconds": 0,
        "average_grade": None,
        "current_difficulty": "easy",
        "points": 0,
        "skill_levels": [],
        "languages": [],
        "recent_achievements": [],
    }


async def test_progress_after_completions(seeded: Quart, client: QuartClient) -> None:
    user_id, headers = await signed_up(client)
    await complete(seeded, user_id, grade=100, hints_used=0, topics=["loops", "lists"], time_spent_seconds=200)
    await complete(seeded, user_id, grade=70, topics=["loops"], time_spent_seconds=100)
    body = await (await client.get(f"{USERS}/me/progress", headers=headers)).get_json()
    assert body["exercises_completed"] == 2 and body["current_streak"] == 1 and body["longest_streak"] == 1
    assert body["total_time_spent_seconds"] == 300 and body["average_grade"] == 85.0
    assert body["skill_levels"] == [
        {"topic": "loops", "level": "beginner", "exercises_completed": 2, "average_grade": 85.0},
        {"topic": "lists", "level": "beginner", "exercises_completed": 1, "average_grade": 100.0},
    ]
    assert body["languages"] == [{"language": "python", "exercises_completed": 2, "average_grade": 85.0}]
    slugs = {achievement["slug"] for achievement in body["recent_achievements"]}
    assert slugs == {"first_exercise", "no_hints", "perfect_score"}
    assert body["points"] == 10 + 15 + 15


async def test_progress_counts_completions_per_language(seeded: Quart, client: QuartClient) -> None:
    from tests.api.test_exercises import add_exercise

    user_id, headers = await signed_up(client)
    javascript = [await add_exercise(seeded, language="javascript") for _ in range(2)]
    await complete(seeded, user_id, exercise_id=javascript[0], grade=90)
    await complete(seeded, user_id, exercise_id=javascript[1], grade=60)
    await complete(seeded, user_id, grade=100)  # the support exercise, in Python
    body = await (await client.get(f"{USERS}/me/progress", headers=headers)).get_json()
    assert body["exercises_completed"] == 3
    assert body["languages"] == [
        {"language": "javascript", "exercises_completed": 2, "average_grade": 75.0},
        {"language": "python", "exercises_completed": 1, "average_grade": 100.0},
    ]


async def test_points_count_every_unlocked_achievement_not_only_the_recent_ones(
    seeded: Quart, client: QuartClient
) -> None:
    user_id, headers = await signed_up(client)  # UTC: 06:00 is early_bird's hour
    early = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC) + timedelta(hours=6)
    topics = ["loops", "lists", "strings", "recursion", "sorting"]
    await complete(seeded, user_id, at=early, grade=100, hints_used=0, difficulty="hard", topics=topics)
    progress = await (await client.get(f"{USERS}/me/progress", headers=headers)).get_json()
    achievements = await (await client.get(f"{USERS}/me/achievements", headers=headers)).get_json()
    assert achievements["unlocked_count"] > len(progress["recent_achievements"]) == 5
    assert progress["points"] == achievements["total_points"]


async def test_history_has_one_row_per_local_day_with_zeros(seeded: Quart, client: QuartClient) -> None:
    timezone = "Pacific/Kiritimati"  # UTC+14: its "today" is often not UTC's
    user_id, headers = await signed_up(client, timezone)
    today = local_today(timezone)
    # Local midday: complete()'s default, midday UTC, is already tomorrow there before 10:00 UTC.
    midday = datetime.combine(today, time(12), ZoneInfo(timezone))
    await complete(seeded, user_id, at=midday, grade=90, time_spent_seconds=60)
    three_days_ago = datetime.combine(today - timedelta(days=3), datetime.min.time(), ZoneInfo(timezone))
    await complete(seeded, user_id, at=three_days_ago + timedelta(hours=9), grade=50, time_spent_seconds=30)
    await complete(seeded, user_id, at=three_days_ago + timedelta(hours=10), grade=70, time_spent_seconds=30)

    response = await client.get(f"{USERS}/me/progress/history", query_string={"days": 7}, headers=headers)
    assert response.status_code == 200
    items = (await response.get_json())["items"]
    assert [item["date"] for item in items] == [(today - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
    by_date = {item["date"]: item for item in items}
    assert by_date[today.isoformat()] == {
        "date": today.isoformat(),
        "exercises_completed": 1,
        "submissions": 0,
        "time_spent_seconds": 60,
        "average_grade": 90.0,
    }
    assert by_date[(today - timedelta(days=3)).isoformat()]["average_grade"] == 60.0
    empty = by_date[(today - timedelta(days=1)).isoformat()]
    assert (empty["exercises_completed"], empty["time_spent_seconds"], empty["average_grade"]) == (0, 0, None)


async def test_history_defaults_to_30_days_and_validates_the_range(seeded: Quart, client: QuartClient) -> None:
    _, headers = await signed_up(client)
    body = await (await client.get(f"{USERS}/me/progress/history", headers=headers)).get_json()
    assert len(body["items"]) == 30 and body["items"][-1]["date"] == local_today("UTC").isoformat()
    assert (
        len((await (await client.get(f"{USERS}/me/progress/history?days=365", headers=headers)).get_json())["items"])
        == 365
    )
    for days in ("0", "366", "many"):
        response = await client.get(f"{USERS}/me/progress/history?days={days}", headers=headers)
        assert response.status_code == 422 and (await response.get_json())["code"] == "validation_error"


async def test_achievements_list_the_catalog_with_progress(seeded: Quart, client: QuartClient) -> None:
    user_id, headers = await signed_up(client)
    for _ in range(3):
        await complete(seeded, user_id, grade=100)
    response = await client.get(f"{USERS}/me/achievements", headers=headers)
    assert response.status_code == 200
    body = await response.get_json()
    assert body["total_count"] == len(ACHIEVEMENTS) == len(body["items"])
    items = {item["slug"]: item for item in body["items"]}
    assert items["first_exercise"]["unlocked"] is True and items["first_exercise"]["unlocked_at"]
    assert (items["exercises_10"]["progress"], items["exercises_10"]["target"]) == (3, 10)
    assert items["exercises_10"]["unlocked"] is False and items["exercises_10"]["unlocked_at"] is None
    assert (items["perfect_10"]["progress"], items["streak_7"]["progress"]) == (3, 1)
    unlocked = [item for item in body["items"] if item["unlocked"]]
    assert body["unlocked_count"] == len(unlocked) == 2  # first_exercise, perfect_score
    assert body["total_points"] == sum(item["points"] for item in unlocked)


async def test_progress_export_as_csv_and_json(seeded: Quart, client: QuartClient) -> None:
    user_id, headers = await signed_up(client)
    await complete(seeded, user_id, at=datetime.now(UTC) - timedelta(days=2), grade=80, time_spent_seconds=90)

    response = await client.get(f"{USERS}/me/progress/export?format=csv", headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and 'filename="codementor-progress-' in disposition
    assert disposition.endswith('.csv"')
    rows = list(csv.reader(io.StringIO(await response.get_data(as_text=True))))
    assert rows[0] == ["date", "exercises_completed", "submissions", "time_spent_seconds", "average_grade"]
    assert len(rows) == 1 + 3  # two days ago, yesterday, today
    assert rows[1][1:4] == ["1", "0", "90"] and float(rows[1][4]) == 80.0 and rows[2][4] == ""

    response = await client.get(f"{USERS}/me/progress/export", headers=headers)
    assert response.status_code == 200 and response.headers["Content-Disposition"].endswith('.json"')
    items = (await response.get_json())["items"]
    assert [item["exercises_completed"] for item in items] == [1, 0, 0]

    response = await client.get(f"{USERS}/me/progress/export?format=xml", headers=headers)
    assert response.status_code == 422


async def test_another_users_progress_never_leaks(seeded: Quart, client: QuartClient) -> None:
    alice_id, _ = await signed_up(client)
    _, bob = await signed_up(client)
    await complete(seeded, alice_id, grade=100, topics=["graphs"])
    progress = await (await client.get(f"{USERS}/me/progress", headers=bob)).get_json()
    assert progress["exercises_completed"] == 0 and progress["skill_levels"] == []
    achievements = await (await client.get(f"{USERS}/me/achievements", headers=bob)).get_json()
    assert achievements["unlocked_count"] == 0 and achievements["total_points"] == 0
    history = await (await client.get(f"{USERS}/me/progress/history?days=2", headers=bob)).get_json()
    assert all(item["exercises_completed"] == 0 for item in history["items"])
    export = await client.get(f"{USERS}/me/progress/export?format=csv", headers=bob)
    assert "1" not in [row[1] for row in csv.reader(io.StringIO(await export.get_data(as_text=True)))][1:]


async def test_progress_routes_need_authentication(client: QuartClient) -> None:
    for path in ("me/progress", "me/progress/history", "me/achievements", "me/progress/export", "me/export"):
        assert (await client.get(f"{USERS}/{path}")).status_code == 401
