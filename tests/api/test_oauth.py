"""Signing in with GitHub and Google through the real app, against fake providers on real sockets.

Every test runs on SQLite + memory and PostgreSQL + Redis. The "browser" is the app's test client for
our routes and httpx for the provider's consent page, exactly the hops a real browser makes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import structlog
from pydantic import SecretStr
from quart import Quart
from quart.testing import QuartClient
from quart.wrappers import Response
from sqlalchemy import select, update

from backend.app import create_app
from backend.config import Settings
from backend.integrations import oauth as oauth_integration
from backend.models import OAuthAccount, User
from backend.security import TokenCipher
from tests.fakes.oauth_providers import FakeGitHub, FakeGoogle, GitHubAccount, GoogleAccount
from tests.helpers import PASSWORD, bearer, link_token, register, wait_for_email

OAUTH = "/api/v1/auth/oauth"
FRONTEND = "http://localhost:5173"
BACKEND = "http://localhost:8000"
FAILED = f"{FRONTEND}/login?error=oauth_failed"


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def github() -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="module")
async def google() -> AsyncIterator[FakeGoogle]:
    fake = FakeGoogle()
    await fake.start()
    yield fake
    await fake.stop()


def with_providers(settings: Settings, github: FakeGitHub | None, google: FakeGoogle | None) -> Settings:
    update: dict[str, Any] = {}
    if github is not None:
        update |= {
            "github_client_id": github.client_id,
            "github_client_secret": SecretStr(github.client_secret),
            "github_oauth_url": github.base_url,
            "github_api_url": github.base_url,
        }
    if google is not None:
        update |= {
            "google_client_id": google.client_id,
            "google_client_secret": SecretStr(google.client_secret),
            "google_discovery_url": google.discovery_url,
        }
    return settings.model_copy(update=update)


@pytest.fixture
def oauth_settings(stack_settings: Settings, github: FakeGitHub, google: FakeGoogle) -> Settings:
    github.reset()
    google.reset()
    return with_providers(stack_settings, github, google)


@pytest.fixture
async def oauth_app(oauth_settings: Settings) -> AsyncIterator[Quart]:
    application = create_app(oauth_settings)
    async with application.test_app():
        yield application


@pytest.fixture
def browser(oauth_app: Quart) -> QuartClient:
    return oauth_app.test_client()


@pytest.fixture
def events(oauth_app: Quart) -> Iterator[list[dict[str, Any]]]:
    """Log events from INFO up (tests log only warnings); taken after create_app, which configures structlog."""
    wrapper_class = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        with structlog.testing.capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(wrapper_class=wrapper_class)


def failure_reason(events: list[dict[str, Any]]) -> str:
    """The one `auth.oauth_failed` event's reason; it must name the provider and carry nothing else."""
    [failure] = [event for event in events if event["event"] == "auth.oauth_failed"]
    assert set(failure) <= {"event", "log_level", "provider", "reason", "exc_info"}, failure
    return failure["reason"]


# --- helpers ---------------------------------------------------------------------------------------


async def start(client: QuartClient, provider: str, redirect_to: str | None = None) -> Response:
    query = {"redirect_to": redirect_to} if redirect_to is not None else None
    response = await client.get(f"{OAUTH}/{provider}", query_string=query)
    assert response.status_code == 302, await response.get_data(as_text=True)
    return response


async def consent(authorize_url: str) -> str:
    """The provider's consent page, over real HTTP: where it sends the browser back."""
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(authorize_url)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def callback(client: QuartClient, provider: str, location: str) -> Response:
    """Follow the provider's redirect back to our callback (the path and query the provider chose)."""
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BACKEND}{OAUTH}/{provider}/callback"
    return await client.get(f"{parts.path}?{parts.query}")


async def sign_in(client: QuartClient, provider: str, redirect_to: str | None = None) -> Response:
    """The whole browser journey: our start route, the provider's consent, our callback."""
    started = await start(client, provider, redirect_to)
    return await callback(client, provider, await consent(started.headers["Location"]))


def spa_params(response: Response, *, provider: str) -> dict[str, str]:
    """The query of a successful callback's redirect to the SPA."""
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{FRONTEND}/auth/callback"
    params = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert set(params) == {"code", "provider", "redirect_to"} and params["provider"] == provider
    return params


async def exchange(client: QuartClient, code: str) -> Response:
    return await client.post(f"{OAUTH}/exchange", json={"code": code})


async def signed_in_payload(client: QuartClient, provider: str) -> dict[str, Any]:
    params = spa_params(await sign_in(client, provider), provider=provider)
    response = await exchange(client, params["code"])
    assert response.status_code == 200, await response.get_json()
    return await response.get_json()


async def fetch_user(app: Quart, email: str) -> User:
    async with app.extensions["db_session_factory"]() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        return user


async def fetch_accounts(app: Quart, user_id: int) -> list[OAuthAccount]:
    async with app.extensions["db_session_factory"]() as session:
        return list(await session.scalars(select(OAuthAccount).where(OAuthAccount.user_id == user_id)))


async def disable(app: Quart, email: str) -> None:
    async with app.extensions["db_session_factory"]() as session:
        await session.execute(update(User).where(User.email == email).values(is_active=False))
        await session.commit()


# --- the provider list and the start route ---------------------------------------------------------


async def test_providers_lists_only_configured_ones(
    stack_settings: Settings, github: FakeGitHub, google: FakeGoogle
) -> None:
    for settings, expected in (
        (with_providers(stack_settings, github, google), ["github", "google"]),
        (with_providers(stack_settings, github, None), ["github"]),
        (stack_settings, []),
    ):
        app = create_app(settings)
        async with app.test_app():
            response = await app.test_client().get(f"{OAUTH}/providers")
        assert response.status_code == 200
        assert (await response.get_json()) == {
            "items": [{"name": name, "authorize_url": f"{BACKEND}{OAUTH}/{name}"} for name in expected]
        }


@pytest.mark.parametrize("path", ["/google", "/google/callback?code=x&state=y", "/gitlab", "/gitlab/callback"])
async def test_unconfigured_or_unknown_provider_is_404(stack_settings: Settings, github: FakeGitHub, path: str) -> None:
    app = create_app(with_providers(stack_settings, github, None))
    async with app.test_app():
        response = await app.test_client().get(f"{OAUTH}{path}")
    body = await response.get_json()
    assert response.status_code == 404 and body["code"] == "not_found"
    assert response.headers["Content-Type"] == "application/problem+json"


async def test_start_redirects_to_provider_with_state_and_pkce(browser: QuartClient, github: FakeGitHub) -> None:
    response = await start(browser, "github")
    location = urlsplit(response.headers["Location"])
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{github.base_url}/login/oauth/authorize"
    assert query["client_id"] == github.client_id and query["response_type"] == "code"
    assert query["redirect_uri"] == f"{BACKEND}{OAUTH}/github/callback"
    assert query["scope"] == "read:user user:email"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32 and "code_verifier" not in query
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("oauth_binding=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert f"Path={OAUTH}" in cookie and "Max-Age=600" in cookie


# --- GitHub ----------------------------------------------------------------------------------------


async def test_github_sign_in_creates_verified_user_without_password(
    oauth_app: Quart, browser: QuartClient, github: FakeGitHub, events: list[dict[str, Any]]
) -> None:
    params = spa_params(await sign_in(browser, "github"), provider="github")
    assert params["redirect_to"] == "/"
    [login_event] = [event for event in events if event["event"] == "auth.oauth_login"]
    response = await exchange(browser, params["code"])
    assert response.status_code == 200
    payload = await response.get_json()
    assert set(payload) == {"user", "access_token", "refresh_token", "token_type", "expires_in", "csrf_token"}
    assert payload["user"]["email"] == "ada@example.com" and payload["user"]["email_verified"] is True
    assert payload["user"]["name"] == "Ada Octocat"
    assert payload["user"]["avatar_url"] == "https://avatars.githubusercontent.com/u/1"

    me = await browser.get("/api/v1/auth/me", headers=bearer(payload))
    assert me.status_code == 200 and (await me.get_json())["id"] == payload["user"]["id"]
    user = await fetch_user(oauth_app, "ada@example.com")
    assert user.password_hash is None and login_event["user_id"] == user.id and login_event["provider"] == "github"
    [account] = await fetch_accounts(oauth_app, user.id)
    assert (account.provider, account.provider_user_id, account.login) == ("github", "4242", "octo-ada")
    assert account.scopes == "read:user user:email"
    # An OAuth-only account cannot sign in with a password, and says so like any wrong password.
    login = await browser.post("/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert login.status_code == 401 and (await login.get_json())["code"] == "invalid_credentials"


async def test_github_picks_primary_verified_email(browser: QuartClient, github: FakeGitHub) -> None:
    github.account = GitHubAccount(
        id=77,
        login="lin",
        name=None,
        email="primary@example.com",
        extra_emails=[
            {"email": "unverified@example.com", "primary": False, "verified": False},
            {"email": "other@example.com", "primary": False, "verified": True},
        ],
    )
    payload = await signed_in_payload(browser, "github")
    assert payload["user"]["email"] == "primary@example.com"
    assert payload["user"]["name"] == "lin"  # no display name on GitHub: the login stands in


async def test_github_name_with_markup_is_stored_as_plain_text(browser: QuartClient, github: FakeGitHub) -> None:
    github.account = GitHubAccount(
        id=79, login="mallory", name="Mal&lt;img src=x onerror=alert(1)&gt;<b>lory</b>", email="mal@example.com"
    )
    payload = await signed_in_payload(browser, "github")
    assert payload["user"]["name"] == "Mallory"


async def test_github_without_verified_email_fails(
    browser: QuartClient, github: FakeGitHub, events: list[dict[str, Any]]
) -> None:
    github.account = GitHubAccount(id=78, login="ghost", name="Ghost", email="ghost@example.com", email_verified=False)
    response = await sign_in(browser, "github")
    assert response.headers["Location"] == FAILED and failure_reason(events) == "email_missing"


async def test_no_redirect_carries_a_token(browser: QuartClient, github: FakeGitHub) -> None:
    started = await start(browser, "github")
    back = await consent(started.headers["Location"])
    finished = await callback(browser, "github", back)
    payload = await (await exchange(browser, spa_params(finished, provider="github")["code"])).get_json()

    secrets_ = [payload["access_token"], payload["refresh_token"], *github.issued_tokens]
    assert github.issued_tokens  # the provider did hand us a token
    for location in (started.headers["Location"], back, finished.headers["Location"]):
        assert not any(secret in location for secret in secrets_)
        assert not {"access_token", "refresh_token", "id_token", "token"} & set(parse_qs(urlsplit(location).query))


async def test_exchange_code_works_once(browser: QuartClient) -> None:
    code = spa_params(await sign_in(browser, "github"), provider="github")["code"]
    assert (await exchange(browser, code)).status_code == 200
    replayed = await exchange(browser, code)
    assert replayed.status_code == 400 and (await replayed.get_json())["code"] == "token_invalid"


async def test_callback_with_unknown_state_fails(
    browser: QuartClient, github: FakeGitHub, events: list[dict[str, Any]]
) -> None:
    started = await start(browser, "github")
    back = await consent(started.headers["Location"])
    forged = back.replace("state=", "state=x")
    response = await callback(browser, "github", forged)
    assert response.status_code == 302 and response.headers["Location"] == FAILED
    assert failure_reason(events) == "state_invalid"
    assert github.token_requests == 0  # the code was never even tried


async def test_callback_without_state_fails(browser: QuartClient, events: list[dict[str, Any]]) -> None:
    started = await start(browser, "github")
    back = urlsplit(await consent(started.headers["Location"]))
    code = parse_qs(back.query)["code"][0]
    response = await browser.get(f"{OAUTH}/github/callback", query_string={"code": code})
    assert response.headers["Location"] == FAILED and failure_reason(events) == "state_missing"


async def test_callback_replayed_fails(browser: QuartClient, events: list[dict[str, Any]]) -> None:
    started = await start(browser, "github")
    back = await consent(started.headers["Location"])
    assert (await callback(browser, "github", back)).headers["Location"].startswith(f"{FRONTEND}/auth/callback?")
    await start(browser, "github")  # a fresh binding cookie: only the state itself is stale
    assert (await callback(browser, "github", back)).headers["Location"] == FAILED
    assert failure_reason(events) == "state_invalid"


async def test_callback_in_another_browser_fails(
    oauth_app: Quart, browser: QuartClient, events: list[dict[str, Any]]
) -> None:
    """Login CSRF: a callback URL from the attacker's own flow, opened in the victim's browser."""
    started = await start(browser, "github")
    back = await consent(started.headers["Location"])
    victim = oauth_app.test_client()
    response = await callback(victim, "github", back)
    assert response.headers["Location"] == FAILED and failure_reason(events) == "browser_mismatch"


async def test_callback_state_of_other_provider_fails(browser: QuartClient, events: list[dict[str, Any]]) -> None:
    started = await start(browser, "github")
    back = await consent(started.headers["Location"])
    state = parse_qs(urlsplit(back).query)["state"][0]
    response = await browser.get(f"{OAUTH}/google/callback", query_string={"code": "c", "state": state})
    assert response.headers["Location"] == FAILED and failure_reason(events) == "state_invalid"


@pytest.mark.parametrize("provider", ["github", "google"])
async def test_denied_consent_fails(
    browser: QuartClient, github: FakeGitHub, google: FakeGoogle, events: list[dict[str, Any]], provider: str
) -> None:
    github.deny = google.deny = True
    started = await start(browser, provider)
    back = await consent(started.headers["Location"])
    assert "error=access_denied" in back
    response = await callback(browser, provider, back)
    assert response.status_code == 302 and response.headers["Location"] == FAILED
    assert failure_reason(events) == "denied"


@pytest.mark.parametrize(
    ("provider", "endpoint", "status", "reason"),
    [
        ("github", "access_token", 500, "token.http_500"),
        ("github", "access_token", 404, "token.rejected"),  # a JSON body with an `error` field
        ("github", "user", 502, "user.http_502"),
        ("github", "user_emails", 403, "emails.http_403"),
        ("google", "token", 500, "token.http_500"),
        ("google", "jwks", 503, "jwks.http_503"),
    ],
)
async def test_provider_error_fails_gracefully(
    browser: QuartClient,
    github: FakeGitHub,
    google: FakeGoogle,
    events: list[dict[str, Any]],
    provider: str,
    endpoint: str,
    status: int,
    reason: str,
) -> None:
    started = await start(browser, provider)
    back = await consent(started.headers["Location"])
    (github if provider == "github" else google).fail[endpoint] = status
    response = await callback(browser, provider, back)
    assert response.status_code == 302 and response.headers["Location"] == FAILED
    assert failure_reason(events) == reason


async def test_unreachable_provider_fails_gracefully(stack_settings: Settings, github: FakeGitHub) -> None:
    github.reset()
    settings = with_providers(stack_settings, github, None).model_copy(
        update={"github_api_url": "http://127.0.0.1:9"}  # the discard port: nothing listens there
    )
    app = create_app(settings)
    async with app.test_app():
        with structlog.testing.capture_logs() as events:
            response = await sign_in(app.test_client(), "github")
    assert response.status_code == 302 and response.headers["Location"] == FAILED
    assert failure_reason(events) == "user.network_error"


async def test_provider_timeout_fails_gracefully(
    browser: QuartClient, github: FakeGitHub, events: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oauth_integration, "TIMEOUT", httpx.Timeout(0.2))
    started = await start(browser, "github")
    back = await consent(started.headers["Location"])
    github.delay["access_token"] = 1
    response = await callback(browser, "github", back)
    assert response.status_code == 302 and response.headers["Location"] == FAILED
    assert failure_reason(events) == "token.timeout"


async def test_google_discovery_down_sends_start_to_login_page(
    browser: QuartClient, google: FakeGoogle, events: list[dict[str, Any]]
) -> None:
    google.fail["discovery"] = 500
    response = await browser.get(f"{OAUTH}/google")
    assert response.status_code == 302 and response.headers["Location"] == FAILED
    assert failure_reason(events) == "discovery.http_500"


# --- Google (OpenID Connect) -----------------------------------------------------------------------


async def test_google_sign_in_verifies_id_token(oauth_app: Quart, browser: QuartClient, google: FakeGoogle) -> None:
    started = await start(browser, "google")
    query = parse_qs(urlsplit(started.headers["Location"]).query)
    assert query["scope"] == ["openid email profile"] and query["nonce"][0]
    assert query["code_challenge_method"] == ["S256"]

    response = await callback(browser, "google", await consent(started.headers["Location"]))
    payload = await (await exchange(browser, spa_params(response, provider="google")["code"])).get_json()
    assert payload["user"]["email"] == "grace@example.com" and payload["user"]["email_verified"] is True
    assert payload["user"]["name"] == "Grace Hopper"
    user = await fetch_user(oauth_app, "grace@example.com")
    [account] = await fetch_accounts(oauth_app, user.id)
    assert (account.provider, account.provider_user_id) == ("google", google.account.sub)
    assert account.scopes is not None and "openid" in account.scopes.split()


async def test_google_unverified_email_creates_unverified_user(browser: QuartClient, google: FakeGoogle) -> None:
    google.account = GoogleAccount(sub="555", email="new@example.com", email_verified=False)
    payload = await signed_in_payload(browser, "google")
    assert payload["user"]["email"] == "new@example.com" and payload["user"]["email_verified"] is False


@pytest.mark.parametrize(
    "tamper",
    [
        {"sign_with_other_key": True},
        {"nonce_override": "a-nonce-of-another-flow"},
        {"claims_override": {"aud": "someone-elses-client"}},
        {"claims_override": {"iss": "https://issuer.example"}},
        {"claims_override": {"exp": 1_000_000_000, "iat": 999_990_000}},
        {"claims_override": {"nonce": None}},
    ],
    ids=["other-key", "wrong-nonce", "wrong-audience", "wrong-issuer", "expired", "no-nonce"],
)
async def test_google_invalid_id_token_fails(
    oauth_app: Quart, browser: QuartClient, google: FakeGoogle, events: list[dict[str, Any]], tamper: dict[str, Any]
) -> None:
    for name, value in tamper.items():
        setattr(google, name, value)
    response = await sign_in(browser, "google")
    assert response.status_code == 302 and response.headers["Location"] == FAILED
    assert failure_reason(events) == "id_token.invalid"
    async with oauth_app.extensions["db_session_factory"]() as session:
        assert await session.scalar(select(User).where(User.email == "grace@example.com")) is None


# --- linking ---------------------------------------------------------------------------------------


async def test_verified_password_account_is_linked_and_found_by_provider_id_later(
    oauth_app: Quart, browser: QuartClient, github: FakeGitHub
) -> None:
    registered = await register(browser, "ada@example.com")
    [verification] = await wait_for_email(oauth_app, "ada@example.com")
    assert (
        await browser.post("/api/v1/auth/verify-email", json={"token": link_token(verification)})
    ).status_code == 200

    first = await signed_in_payload(browser, "github")
    assert first["user"]["id"] == registered["user"]["id"]
    # The password still works: the owner of the address chose it.
    login = await browser.post("/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert login.status_code == 200

    github.account.email = "ada.new@example.com"  # found by GitHub's user id now, not by email
    second = await signed_in_payload(browser, "github")
    assert second["user"]["id"] == registered["user"]["id"] and second["user"]["email"] == "ada@example.com"
    assert len(await fetch_accounts(oauth_app, registered["user"]["id"])) == 1


async def test_unverified_password_account_is_linked_and_its_password_dropped(
    oauth_app: Quart, browser: QuartClient, google: FakeGoogle
) -> None:
    """Whoever registered the address without proving it must not keep a way into the real owner's account."""
    squatter = await register(browser, "grace@example.com")
    payload = await signed_in_payload(browser, "google")
    assert payload["user"]["id"] == squatter["user"]["id"] and payload["user"]["email_verified"] is True

    login = await browser.post("/api/v1/auth/login", json={"email": "grace@example.com", "password": PASSWORD})
    assert login.status_code == 401
    assert (await browser.get("/api/v1/auth/me", headers=bearer(squatter))).status_code == 401
    assert (await browser.get("/api/v1/auth/me", headers=bearer(payload))).status_code == 200
    assert (await fetch_user(oauth_app, "grace@example.com")).password_hash is None


# PostgreSQL only: SQLite does not enforce the column's length, so nothing fails there.
@pytest.mark.parametrize("stack_settings", ["production"], indirect=True)
async def test_sign_in_failing_after_it_wrote_ends_on_the_login_page_and_keeps_nothing(
    oauth_app: Quart, browser: QuartClient, google: FakeGoogle, events: list[dict[str, Any]]
) -> None:
    """The new user's row is written, then the database refuses the account link: the browser still gets
    the login page (not a 500), and the half-made account is rolled back although a redirect is a success."""
    google.account = GoogleAccount(sub="9" * 300, email="half@example.com")  # provider_user_id is 255 at most
    response = await sign_in(browser, "google")
    assert response.status_code == 302 and response.headers["Location"] == FAILED
    assert failure_reason(events) == "internal_error"
    async with oauth_app.extensions["db_session_factory"]() as session:
        assert await session.scalar(select(User).where(User.email == "half@example.com")) is None


async def test_unverified_provider_email_does_not_link_existing_account(
    oauth_app: Quart, browser: QuartClient, google: FakeGoogle, events: list[dict[str, Any]]
) -> None:
    owner = await register(browser, "grace@example.com")
    google.account = GoogleAccount(sub="666", email="grace@example.com", email_verified=False)
    response = await sign_in(browser, "google")
    assert response.headers["Location"] == FAILED and failure_reason(events) == "email_unverified"
    assert await fetch_accounts(oauth_app, owner["user"]["id"]) == []


async def test_disabled_account_cannot_sign_in(
    oauth_app: Quart, browser: QuartClient, events: list[dict[str, Any]]
) -> None:
    await signed_in_payload(browser, "github")
    await disable(oauth_app, "ada@example.com")
    response = await sign_in(browser, "github")
    assert response.status_code == 302 and response.headers["Location"] == FAILED
    assert failure_reason(events) == "account_disabled"


@pytest.mark.parametrize("provider", ["github", "google"])
async def test_provider_tokens_are_stored_encrypted(
    oauth_app: Quart,
    oauth_settings: Settings,
    browser: QuartClient,
    github: FakeGitHub,
    google: FakeGoogle,
    provider: str,
) -> None:
    payload = await signed_in_payload(browser, provider)
    fake = github if provider == "github" else google
    [account] = await fetch_accounts(oauth_app, payload["user"]["id"])
    cipher = TokenCipher(oauth_settings)
    assert account.access_token_encrypted is not None
    assert account.access_token_encrypted not in fake.issued_tokens
    assert cipher.decrypt(account.access_token_encrypted) == fake.issued_tokens[0]
    if provider == "google":  # Google also granted a refresh token
        assert account.refresh_token_encrypted is not None
        assert cipher.decrypt(account.refresh_token_encrypted) == fake.issued_tokens[1]
        assert fake.issued_tokens[1] not in account.refresh_token_encrypted
    else:
        assert account.refresh_token_encrypted is None


# --- where the SPA lands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("redirect_to", "kept"),
    [
        ("/exercises/42?tab=hints", "/exercises/42?tab=hints"),
        ("/", "/"),
        ("https://evil.example", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("exercises", "/"),
    ],
)
async def test_redirect_to_kept_only_when_a_path(browser: QuartClient, redirect_to: str, kept: str) -> None:
    response = await sign_in(browser, "github", redirect_to=redirect_to)
    assert spa_params(response, provider="github")["redirect_to"] == kept
