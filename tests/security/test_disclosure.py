"""No exception text, SQL or stack trace in any 5xx: a database error mid-query answers generically.

(The unexpected-exception 500 is tested in tests/api/test_errors.py, the database outage 503 in
tests/fault/test_database_outage.py, the LLM 502/504 in tests/fault/test_llm_upstream.py.)
"""

from __future__ import annotations

import json

from quart import Quart
from quart.testing import QuartClient
from sqlalchemy import text

from tests.security.support import new_account

LEAKS = ("SELECT", "conversations", "Traceback", "sqlalchemy", "asyncpg", "sqlite3", "Error:", 'File "', "line ")


async def test_a_failing_query_answers_without_sql_or_exception_text(app: Quart, client: QuartClient) -> None:
    account = await new_account(client)
    engine = app.extensions["db_engine"]
    async with engine.begin() as connection:  # a table gone missing: the query itself fails
        await connection.execute(text("ALTER TABLE conversations RENAME TO conversations_hidden"))
    try:
        response = await client.get("/api/v1/chat/conversations", headers=account.headers)
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("ALTER TABLE conversations_hidden RENAME TO conversations"))
    body = await response.get_json()
    assert response.status_code in (500, 503), body
    assert response.content_type == "application/problem+json"
    assert set(body) == {"type", "title", "status", "detail", "code", "request_id"}
    assert body["code"] in ("internal_error", "service_unavailable") and body["request_id"]
    serialized = json.dumps(body)
    for leak in LEAKS:
        assert leak not in serialized, leak
