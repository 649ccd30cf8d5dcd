"""What protects a signed-in browser: CSRF on every unsafe route, CORS, and the security headers.

These are the complete versions: the CSRF test walks every unsafe route of the url_map (a new route is
covered without anyone remembering to), and the header tests check every kind of response the app
gives, errors and the docs included. (tests/api/test_auth.py keeps the CSRF happy path with the header.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from quart import Quart
from quart.testing import QuartClient

from backend.app import create_app
from backend.config import Settings
from tests.conftest import make_settings
from tests.helpers import PASSWORD, register, unique_email
from tests.security.support import UNSAFE_METHODS, problem_code, routes

ALLOWED_ORIGIN = "http://localhost:5173"
EVIL_ORIGINS = ("https://evil.example", "null", "http://localhost:5173.evil.example", "http://localhost")
# docs/API.md: cookie-authenticated unsafe requests need X-CSRF-Token, except these (no session yet, or
# signed otherwise).
CSRF_EXEMPT = {
    "/api/v1/auth/register",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/verify-email",
    "/api/v1/auth/resend-verification",
    "/api/v1/auth/password-reset",
    "/api/v1/auth/password-reset/confirm",
    "/api/v1/auth/oauth/exchange",
    "/api/v1/github/webhook",
}
API_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
PRODUCTION = {
    "environment": "production",
    "frontend_url": "https://codementor.example",
    "backend_url": "https://api.codementor.example",
    "cors_origins": ["https://codementor.example"],
    "metrics_token": "metrics-token-for-the-browser-tests",
    "token_encryption_key": "CQ8tNkEXcTwh_oW1AOdO22I97r60YoYbN_AQYwMA6ho=",
    "bcrypt_rounds": 12,
    "log_level": "ERROR",
}


def concrete(rule: str) -> str:
    return re.sub(r"<[^>]*>", "1", rule)


async def test_cookie_auth_without_csrf_header_is_refused_on_every_unsafe_route(
    app: Quart, client: QuartClient
) -> None:
    email = unique_email()
    await register(client, email)
    await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})  # cookies in the jar
    checked = 0
    for method, rule in routes(app):
        if method not in UNSAFE_METHODS or rule.rule in CSRF_EXEMPT or rule.rule.startswith("/_probe"):
            continue
        path = concrete(rule.rule)
        for headers in ({}, {"X-CSRF-Token": "forged-value"}):
            response = await client.open(path, method=method, json={}, headers=headers)
            body = await response.get_json()
            assert response.status_code == 403 and problem_code(body) == "csrf_failed", (method, path, body)
        checked += 1
    assert checked >= 20
    still_signed_in = await client.get("/api/v1/users/me")  # safe methods need no header; nothing was changed
    assert still_signed_in.status_code == 200


async def every_kind_of_response(client: QuartClient) -> list[tuple[str, object]]:
    """(label, response) for success, each error class, a 500, a preflight and the docs."""
    big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    return [
        ("root", await client.get("/")),
        ("health", await client.get("/health")),
        ("ready", await client.get("/health/ready")),
        ("spec", await client.get("/openapi.json")),
        ("security.txt", await client.get("/.well-known/security.txt")),
        ("401", await client.get("/api/v1/users/me")),
        ("404", await client.get("/api/v1/nothing-here")),
        ("405", await client.delete("/health")),
        ("413", await client.post("/api/v1/auth/login", data=big, headers={"Content-Type": "application/json"})),
        ("415", await client.post("/api/v1/auth/login", data="a=b", headers={"Content-Type": "text/plain"})),
        ("422", await client.post("/api/v1/auth/login", json={"email": 5})),
        ("500", await client.get("/_probe/boom")),
        ("preflight", await client.options("/api/v1/auth/login", headers={"Origin": ALLOWED_ORIGIN})),
    ]


async def test_security_headers_on_every_kind_of_response(embedded_probe_client: QuartClient) -> None:
    for label, response in await every_kind_of_response(embedded_probe_client):
        for name, value in API_HEADERS.items():
            assert response.headers.get(name) == value, (label, name)
        csp = response.headers["Content-Security-Policy"]
        assert csp.startswith("default-src 'none'") and "frame-ancestors 'none'" in csp, label
        assert response.headers["Cache-Control"] == "no-store", label
        assert "Strict-Transport-Security" not in response.headers, label  # development and test speak http


async def test_docs_get_a_csp_that_runs_only_our_own_scripts(embedded_probe_client: QuartClient) -> None:
    for path in ("/docs", "/docs/static/swagger-ui-bundle.js"):
        response = await embedded_probe_client.get(path)
        assert response.status_code == 200 and response.headers["X-Frame-Options"] == "DENY"
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-eval" not in csp and "script-src 'self' 'unsafe-inline'" not in csp and "http" not in csp


async def test_production_adds_hsts_to_every_response(tmp_path: Path) -> None:
    app = create_app(make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/prod.db", **PRODUCTION))
    async with app.test_app():
        client = app.test_client()
        for path in ("/health", "/docs", "/api/v1/nothing-here", "/api/v1/users/me"):
            hsts = (await client.get(path)).headers["Strict-Transport-Security"]
            assert int(hsts.split("max-age=")[1].split(";")[0]) >= 31536000, path


async def test_cors_refuses_unknown_origins_on_every_kind_of_response(embedded_probe_client: QuartClient) -> None:
    for origin in EVIL_ORIGINS:
        for path, method in [("/health", "GET"), ("/api/v1/users/me", "GET"), ("/api/v1/auth/login", "OPTIONS")]:
            headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
            response = await embedded_probe_client.open(path, method=method, headers=headers)
            assert "Access-Control-Allow-Origin" not in response.headers, (origin, path)
            assert "Access-Control-Allow-Credentials" not in response.headers, (origin, path)


async def test_cors_never_answers_a_wildcard_with_credentials(embedded_probe_client: QuartClient) -> None:
    for label, response in await every_kind_of_response(embedded_probe_client):
        assert response.headers.get("Access-Control-Allow-Origin") != "*", label
    allowed = await embedded_probe_client.get("/api/v1/users/me", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true" and "Origin" in allowed.headers["Vary"]
    with pytest.raises(ValueError, match="CORS_ORIGINS"):
        Settings(_env_file=None, cors_origins="*")  # type: ignore[call-arg]


async def test_production_cookies_are_secure_httponly_and_cleared_at_logout(sqlite_url: str) -> None:
    app = create_app(make_settings(database_url=sqlite_url, **PRODUCTION))
    async with app.test_app():
        client = app.test_client()
        body = {"email": unique_email(), "password": PASSWORD, "name": "Prod"}
        registered = await client.post("/api/v1/auth/register", json=body)
        assert registered.status_code == 201
        cookies = {value.split("=", 1)[0]: value for value in registered.headers.getlist("Set-Cookie")}
        assert set(cookies) >= {"access_token", "refresh_token", "csrf_token"}
        for name, value in cookies.items():
            assert "Secure" in value and "SameSite=Lax" in value, name
        assert "HttpOnly" in cookies["access_token"] and "HttpOnly" in cookies["refresh_token"]
        token = (await registered.get_json())["csrf_token"]
        logout = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": token})
        assert logout.status_code == 204
        cleared = logout.headers.getlist("Set-Cookie")
        assert {value.split("=", 1)[0] for value in cleared} >= {"access_token", "refresh_token"}
        assert all("Max-Age=0" in value or "Expires=Thu, 01 Jan 1970" in value for value in cleared)


async def test_a_csrf_token_must_be_one_issued_for_the_session(app: Quart) -> None:
    """Double submit alone compares the header with the cookie: whoever can plant a cookie for the API's host
    (a sibling subdomain, a network attacker on plain http to a sibling) chooses both. The token is bound to
    its session, so a made-up value, or a valid token of the attacker's own session, is refused."""
    client = app.test_client(use_cookies=False)
    victim, attacker = [
        await (await client.post("/api/v1/auth/register", json=body)).get_json()
        for body in ({"email": unique_email(), "password": PASSWORD, "name": name} for name in ("Vic", "Eve"))
    ]

    async def logout(csrf: str) -> int:
        cookie = f"access_token={victim['access_token']}; csrf_token={csrf}"
        response = await client.post("/api/v1/auth/logout", headers={"Cookie": cookie, "X-CSRF-Token": csrf})
        if response.status_code != 204:
            assert problem_code(await response.get_json()) == "csrf_failed"
        return response.status_code

    for planted in ("abc", "x" * 32, attacker["csrf_token"], victim["csrf_token"] + "x", "." + victim["csrf_token"]):
        assert await logout(planted) == 403, planted
    assert await logout(victim["csrf_token"]) == 204
