"""True streaks: whatever reads the current streak shows 0 once a whole local calendar day was missed,
without waiting for the next completion (the test moves the clock the reads use)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

import backend.models.user
from backend.db import utcnow
from tests.api.test_exercises import SOLUTION, WRONG, add_exercise, sign_in, submit


async def streaks_read(client: QuartClient, headers: dict[str, str]) -> list[Any]:
    me = await (await client.get("/api/v1/users/me", headers=headers)).get_json()
    auth_me = await (await client.get("/api/v1/auth/me", headers=headers)).get_json()
    progress = await (await client.get("/api/v1/users/me/progress", headers=headers)).get_json()
    export = await (await client.get("/api/v1/users/me/export", headers=headers)).get_json()
    return [
        me["current_streak"],
        auth_me["current_streak"],
        progress["current_streak"],
        export["profile"]["current_streak"],
    ]


async def test_streak_reads_zero_once_a_local_day_was_missed(
    app: Quart, client: QuartClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers, _ = await sign_in(client, timezone="Pacific/Auckland")
    done, other = await add_exercise(app), await add_exercise(app)
    assert (await submit(client, headers, done, SOLUTION))["streak"]["current"] == 1
    assert await streaks_read(client, headers) == [1, 1, 1, 1]

    now = utcnow()
    monkeypatch.setattr(backend.models.user, "utcnow", lambda: now + timedelta(days=1))
    assert await streaks_read(client, headers) == [1, 1, 1, 1]  # tomorrow: still alive until it ends

    monkeypatch.setattr(backend.models.user, "utcnow", lambda: now + timedelta(days=2))
    assert await streaks_read(client, headers) == [0, 0, 0, 0]  # a whole day missed
    progress = await (await client.get("/api/v1/users/me/progress", headers=headers)).get_json()
    assert progress["longest_streak"] == 1  # the record stays
    failed = await submit(client, headers, other, WRONG)
    assert failed["streak"] == {"current": 0, "longest": 1, "extended": False}
