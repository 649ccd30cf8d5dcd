"""An outsider's probes at the HTTP surface: /metrics' token, paths Werkzeug would redirect, per-IP limits
from an IPv6 prefix, the CSV export's cells and the SSE framing of chat replies.

(X-Forwarded-For spoofing is tests/security/test_limits.py; request ids and CRLF are test_outsider_server.py.)
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from pydantic import ValidationError
from quart.testing import QuartClient

from backend.config import Settings
from tests.helpers import PASSWORD, bearer, unique_email
from tests.security.support import new_account, problem_code
from tests.test_config import GOOD_PRODUCTION


@pytest.mark.parametrize("token", ["", "   ", "short-token"])
def test_production_refuses_a_blank_or_short_metrics_token(token: str) -> None:
    # `METRICS_TOKEN=` used to pass for a token: /metrics then answered `Authorization: Bearer` with nothing.
    values = {key.lower(): value for key, value in GOOD_PRODUCTION.items()} | {"metrics_token": token}
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        Settings(_env_file=None, **values)
    if not token.strip():  # elsewhere a blank token is no token (/metrics open, as documented)
        assert Settings(_env_file=None, metrics_token=token).metrics_token is None


async def test_doubled_slashes_are_a_404_problem_not_a_redirect_to_the_host_header(
    embedded_client: QuartClient,
) -> None:
    for path in ("/api/v1//exercises", "/api/v1/exercises//1", "/api//v1/auth/login"):
        for method in ("GET", "POST"):
            response = await embedded_client.open(path, method=method, headers={"Host": "evil.example"}, json={})
            assert response.status_code in (404, 405), (path, method, response.status_code)
            assert "Location" not in response.headers, path
            assert response.mimetype == "application/problem+json", path


async def test_an_ipv6_prefix_shares_one_per_ip_limit(embedded_client: QuartClient) -> None:
    """Registration is 5 a minute per address: every address of one /64 is one address."""
    statuses = []
    for host in range(1, 8):
        response = await embedded_client.post(
            "/api/v1/auth/register",
            json={"email": unique_email(), "password": PASSWORD, "name": "Six"},
            scope_base={"client": (f"2001:db8:77:1::{host:x}", 1000)},
        )
        statuses.append(response.status_code)
    assert statuses == [201] * 5 + [429] * 2
    other_prefix = await embedded_client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "name": "Other"},
        scope_base={"client": ("2001:db8:77:2::1", 1000)},
    )
    assert other_prefix.status_code == 201
    # An IPv4 client is the same client when it arrives as an IPv4-mapped IPv6 address.
    for address in ["192.0.2.77"] * 5 + ["::ffff:192.0.2.77"]:
        last = await embedded_client.post(
            "/api/v1/auth/register",
            json={"email": unique_email(), "password": PASSWORD, "name": "Mapped"},
            scope_base={"client": (address, 1000)},
        )
    assert last.status_code == 429


async def test_progress_csv_holds_no_cell_a_spreadsheet_would_run(embedded_client: QuartClient) -> None:
    """Every cell is a date, a number or empty: nothing user-written (names, titles) reaches the file, so
    nothing can start with = + - @ or a control character and become a formula."""
    registered = await embedded_client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "name": '=HYPERLINK("http://evil")'},
    )
    headers = bearer(await registered.get_json())
    await embedded_client.patch("/api/v1/users/me", json={"bio": "@SUM(1+1)*cmd|' /C calc'!A0"}, headers=headers)
    response = await embedded_client.get("/api/v1/users/me/progress/export.csv", headers=headers)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="codementor-progress-')
    rows = list(csv.reader(io.StringIO(await response.get_data(as_text=True))))
    assert rows[0] == ["date", "exercises_completed", "submissions", "time_spent_seconds", "average_grade"]
    for row in rows[1:]:
        for cell in row:
            assert cell == "" or cell[0].isdigit(), row


async def test_stream_frames_carry_message_text_as_json_only(embedded_client: QuartClient) -> None:
    """Newlines and `event:` lines in a message cannot add frames to the reply's event stream."""
    account = await new_account(embedded_client)
    conversation = await (
        await embedded_client.post("/api/v1/chat/conversations", json={}, headers=account.headers)
    ).get_json()
    content = 'hi\r\n\r\nevent: done\r\ndata: {"forged": true}\n\nevent: error\rdata: x\u2028\u0085'
    response = await embedded_client.post(
        f"/api/v1/chat/conversations/{conversation['id']}/messages/stream",
        json={"content": content},
        headers=account.headers,
    )
    body = (await response.get_data()).decode()
    frames = [frame for frame in body.split("\n\n") if frame]
    names = []
    for frame in frames:
        lines = frame.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), frame
        assert "\r" not in frame
        json.loads(lines[1].removeprefix("data: "))
        names.append(lines[0].removeprefix("event: "))
    assert names[0] == "start" and names[-1] == "done" and set(names[1:-1]) == {"delta"}
    messages = await (
        await embedded_client.get(f"/api/v1/chat/conversations/{conversation['id']}/messages", headers=account.headers)
    ).get_json()
    assert messages["items"][0]["content"] == content  # stored verbatim all the same


async def test_a_stolen_access_token_cannot_guess_the_password(embedded_client: QuartClient) -> None:
    """Changing the password checks the current one: past 5 tries an hour it is 429, the right one too."""
    account = await new_account(embedded_client)
    statuses = []
    for attempt in range(6):
        body = {"current_password": f"Guess-number-{attempt}", "new_password": "Another-pass-99"}
        response = await embedded_client.post("/api/v1/auth/password/change", json=body, headers=account.headers)
        statuses.append(response.status_code)
    assert statuses == [400] * 5 + [429]
    right = {"current_password": PASSWORD, "new_password": "Another-pass-99"}
    refused = await embedded_client.post("/api/v1/auth/password/change", json=right, headers=account.headers)
    assert refused.status_code == 429 and problem_code(await refused.get_json()) == "rate_limited"
    assert "Retry-After" in refused.headers
