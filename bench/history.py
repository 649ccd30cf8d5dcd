"""The `history` scenario of bench/run.py: does a request cost more for a student with a long history?

Two seeded students get, straight in the database (through the API it would take hours), 10 and 10,000
graded submissions on their daily exercise and 10 and 10,000 chat messages in their conversation. Then
every read a student makes is measured for each (wrk, as the other read scenarios) and the CPU time per
request of the long history is given as a ratio to the short one: issue 18 wants them within 20%.
Pages are of 10 items, so both students fill them and only the history's length differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

SIZES = (10, 10_000)
PATHS = {
    "me": "/api/v1/auth/me",
    "progress": "/api/v1/users/me/progress",
    "daily": "/api/v1/exercises/daily",
    "exercise history": "/api/v1/exercises/history?limit=10",
    "submissions": "/api/v1/exercises/{exercise_id}/submissions?limit=10",
    "conversations": "/api/v1/chat/conversations?limit=10",
    "messages": "/api/v1/chat/conversations/{conversation_id}/messages?limit=10",
}
GOAL = 1.2

SUBMISSIONS = """
INSERT INTO submissions (user_id, exercise_id, user_exercise_id, code, status, grade, tests_passed, tests_total,
                         results, stdout, stderr, strengths, improvements, created_at)
SELECT ue.user_id, ue.exercise_id, ue.id, 'def solve():' || chr(10) || '    return ' || g, 'failed', 0, 0, 3,
       '[]', '', '', '[]', '[]', now() - make_interval(secs => g)
FROM user_exercises ue, generate_series(1, $2) g
WHERE ue.id = (SELECT min(id) FROM user_exercises WHERE user_id = $1)
"""
MESSAGES = """
INSERT INTO messages (conversation_id, role, content, status, created_at)
SELECT $1, CASE WHEN g % 2 = 1 THEN 'user' ELSE 'assistant' END, 'Message number ' || g || ' about loops.',
       'complete', now() - make_interval(secs => $2 - g)
FROM generate_series(1, $2) g
"""


async def _grow(database_url: str, email: str, conversation_id: int, count: int) -> int:
    """Add `count` submissions and messages to the student's history; answer the exercise they are on."""
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            user_id = await connection.fetchval("SELECT id FROM users WHERE email = $1", email)
            await connection.execute(SUBMISSIONS, user_id, count)
            exercise_id = await connection.fetchval(
                "UPDATE user_exercises SET submissions_count = submissions_count + $2"
                " WHERE id = (SELECT min(id) FROM user_exercises WHERE user_id = $1) RETURNING exercise_id",
                user_id,
                count,
            )
            await connection.execute(MESSAGES, conversation_id, count)
            await connection.execute(
                "UPDATE conversations SET message_count = message_count + $2, last_message_at = now() WHERE id = $1",
                conversation_id,
                count,
            )
        await connection.execute("ANALYZE submissions; ANALYZE messages")
    finally:
        await connection.close()
    return int(exercise_id)


def grow_histories(database_url: str, users: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """The last two seeded students with SIZES histories, once per run (every server shares the database)."""
    chosen = list(zip(SIZES, users[-len(SIZES) :], strict=True))
    for size, user in chosen:
        if "exercise_id" not in user:
            user["exercise_id"] = asyncio.run(_grow(database_url, user["email"], user["conversation_id"], size))
    return chosen


def measure(
    database_url: str, users: list[dict[str, Any]], read: Callable[[str, str, dict[str, Any]], Any]
) -> list[Any]:
    """`read(scenario, path, user)` makes a row (bench/run.py's wrk_row); every path for each history
    size, the largest's note saying its CPU per request as a ratio to the smallest's."""
    rows = []
    chosen = grow_histories(database_url, users)
    for name, template in PATHS.items():
        measured = []
        for size, user in chosen:
            path = template.format(exercise_id=user["exercise_id"], conversation_id=user["conversation_id"])
            row = read(f"history: {name} ({size:,})", path, user)
            measured.append(row)
        small, big = measured[0], measured[-1]
        if small.cpu_us and big.cpu_us:
            ratio = big.cpu_us / small.cpu_us
            big.note = f"CPU {ratio:.2f}x the {SIZES[0]}-item history (goal <= {GOAL})"
            big.details["cpu_ratio_to_small"] = round(ratio, 3)
        rows += measured
    return rows
