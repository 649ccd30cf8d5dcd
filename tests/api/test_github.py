"""GitHub: connection status, linking repositories through PyGithub against a fake GitHub REST API,
pull requests, review requests and the webhook, on both stacks."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from quart import Quart
from quart.testing import QuartClient
from sqlalchemy import func, select

from backend.app import create_app
from backend.config import Settings
from backend.models import OAuthAccount, Review
from backend.security import TokenCipher
from tests.conftest import make_settings
from tests.fakes.github_api import FakeGitHubAPI
from tests.fakes.oauth_providers import FakeGitHub
from tests.helpers import PASSWORD, bearer, register

GITHUB = "/api/v1/github"
WEBHOOK_SECRET = "webhook-secret-for-tests"


@pytest.fixture
async def github_app(stack_settings: Settings, github_api: FakeGitHubAPI) -> AsyncIterator[Quart]:
    github_api.reset()
    settings = stack_settings.model_copy(
        update={"github_api_url": github_api.base_url, "github_webhook_secret": SecretStr(WEBHOOK_SECRET)}
    )
    application = create_app(settings)
    async with application.test_app():
        yield application


@pytest.fixture
def client(github_app: Quart) -> QuartClient:
    return github_app.test_client()


async def new_user(client: QuartClient) -> tuple[dict[str, str], int]:
    tokens = await register(client)
    return bearer(tokens), tokens["user"]["id"]


async def store_github_grant(app: Quart, user_id: int, token: str, scopes: str | None) -> None:
    """What a finished GitHub OAuth flow leaves behind: the account link with its encrypted token."""
    async with app.extensions["db_session_factory"]() as session:
        session.add(
            OAuthAccount(
                user_id=user_id,
                provider="github",
                provider_user_id=uuid.uuid4().hex,
                login="octocat",
                access_token_encrypted=TokenCipher(app.config["SETTINGS"]).encrypt(token),
                scopes=scopes,
            )
        )
        await session.commit()


async def link(client: QuartClient, headers: dict[str, str], full_name: str) -> dict[str, Any]:
    response = await client.post(
        f"{GITHUB}/repositories", json={"repository_url": f"https://github.com/{full_name}"}, headers=headers
    )
    assert response.status_code == 201, await response.get_json()
    return await response.get_json()


async def request_review(client: QuartClient, headers: dict[str, str], repository_id: int, **body: Any) -> Any:
    return await client.post(f"{GITHUB}/repositories/{repository_id}/reviews", json=body, headers=headers)


def signed(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def deliver(
    client: QuartClient,
    event: str,
    payload: dict[str, Any],
    *,
    signature: str | None = "auto",
    delivery: str | None = "",
) -> Any:
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "Content-Type": "application/json"}
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery or uuid.uuid4().hex
    if signature == "auto":
        headers["X-Hub-Signature-256"] = signed(body)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return await client.post(f"{GITHUB}/webhook", data=body, headers=headers)


def pull_request_event(github_id: int, action: str = "opened", number: int = 3) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "pull_request": {"number": number, "head": {"ref": "feature"}},
        "repository": {"id": github_id, "full_name": "octo/auto"},
    }


# --- connection ------------------------------------------------------------------------------------


async def test_connection_without_github_account_is_not_connected(client: QuartClient) -> None:
    headers, _ = await new_user(client)
    response = await client.get(f"{GITHUB}/connection", headers=headers)
    assert response.status_code == 200
    assert await response.get_json() == {"connected": False, "login": None, "scopes": [], "connected_at": None}


async def test_connection_signed_in_without_repo_scope_is_not_connected(client: QuartClient, github_app: Quart) -> None:
    headers, user_id = await new_user(client)
    await store_github_grant(github_app, user_id, "gho_signin", "read:user user:email")
    body = await (await client.get(f"{GITHUB}/connection", headers=headers)).get_json()
    assert body["connected"] is False


async def test_connection_with_repo_scope_is_connected_then_disconnect_forgets_token(
    client: QuartClient, github_app: Quart
) -> None:
    headers, user_id = await new_user(client)
    await store_github_grant(github_app, user_id, "gho_repo", "read:user repo")
    body = await (await client.get(f"{GITHUB}/connection", headers=headers)).get_json()
    assert body["connected"] is True and body["login"] == "octocat" and "repo" in body["scopes"]
    assert body["connected_at"] is not None

    assert (await client.delete(f"{GITHUB}/connection", headers=headers)).status_code == 204
    assert (await (await client.get(f"{GITHUB}/connection", headers=headers)).get_json())["connected"] is False
    async with github_app.extensions["db_session_factory"]() as session:
        account = await session.scalar(select(OAuthAccount).where(OAuthAccount.user_id == user_id))
    assert account is not None  # the link stays for signing in
    assert account.access_token_encrypted is None and account.scopes is None


# --- connect flow (GitHub OAuth with the `repo` scope, against the fake GitHub OAuth server) -----------


@pytest.fixture(scope="module")
async def github_oauth() -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def oauth_client(stack_settings: Settings, github_oauth: FakeGitHub) -> AsyncIterator[QuartClient]:
    github_oauth.reset()
    settings = stack_settings.model_copy(
        update={
            "github_client_id": github_oauth.client_id,
            "github_client_secret": SecretStr(github_oauth.client_secret),
            "github_oauth_url": github_oauth.base_url,
            "github_api_url": github_oauth.base_url,
        }
    )
    application = create_app(settings)
    async with application.test_app():
        yield application.test_client()


async def connect_journey(client: QuartClient) -> tuple[str, str]:
    """Our connect route, GitHub's consent page over real HTTP, our callback: (authorize URL, landing)."""
    started = await client.get(f"{GITHUB}/connect")
    assert started.status_code == 302, await started.get_data(as_text=True)
    authorize_url = started.headers["Location"]
    async with httpx.AsyncClient(timeout=5) as http:
        consent = await http.get(authorize_url)
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["location"])
    assert back.path == f"{GITHUB}/callback"
    finished = await client.get(f"{back.path}?{back.query}")
    assert finished.status_code == 302
    return authorize_url, finished.headers["Location"]


async def test_connect_flow_stores_repo_token_encrypted(oauth_client: QuartClient, github_oauth: FakeGitHub) -> None:
    await register(oauth_client)  # a browser: the cookies stay in the client
    authorize_url, landing = await connect_journey(oauth_client)
    query = parse_qs(urlsplit(authorize_url).query)
    assert "repo" in query["scope"][0].split() and query["code_challenge_method"] == ["S256"]
    assert query["state"] and query["redirect_uri"] == [f"http://localhost:8000{GITHUB}/callback"]
    assert landing == "http://localhost:5173/settings/github?status=connected"

    body = await (await oauth_client.get(f"{GITHUB}/connection")).get_json()
    assert body["connected"] is True and body["login"] == "octo-ada" and "repo" in body["scopes"]
    app = oauth_client.app
    async with app.extensions["db_session_factory"]() as session:
        account = await session.scalar(select(OAuthAccount))
    assert account is not None and account.access_token_encrypted is not None
    [token] = github_oauth.issued_tokens
    assert token not in account.access_token_encrypted
    assert TokenCipher(app.config["SETTINGS"]).decrypt(account.access_token_encrypted) == token


async def test_disconnect_revokes_the_token_at_github(oauth_client: QuartClient, github_oauth: FakeGitHub) -> None:
    """Disconnecting must end GitHub's grant too: a forgotten token that still works is one a leaked backup
    or log could still use. Revoked with the OAuth app's own credentials (GitHub's DELETE
    /applications/{client_id}/token), best effort: GitHub being down never keeps the student connected."""
    csrf = {"X-CSRF-Token": (await register(oauth_client))["csrf_token"]}  # a browser: cookies and the header
    await connect_journey(oauth_client)
    [token] = github_oauth.issued_tokens
    assert (await oauth_client.delete(f"{GITHUB}/connection", headers=csrf)).status_code == 204
    assert github_oauth.revoked == [token]
    assert (await (await oauth_client.get(f"{GITHUB}/connection")).get_json())["connected"] is False

    await connect_journey(oauth_client)
    github_oauth.fail["revoke_token"] = 503  # GitHub down: still disconnected here, and said so in the log
    assert (await oauth_client.delete(f"{GITHUB}/connection", headers=csrf)).status_code == 204
    assert (await (await oauth_client.get(f"{GITHUB}/connection")).get_json())["connected"] is False


async def test_erasing_the_account_revokes_its_github_token(
    oauth_client: QuartClient, github_oauth: FakeGitHub
) -> None:
    tokens = await register(oauth_client)
    csrf = {"X-CSRF-Token": tokens["csrf_token"]}
    await connect_journey(oauth_client)
    [token] = github_oauth.issued_tokens
    refused = await oauth_client.delete("/api/v1/users/me", json={"password": "wrong-password-1"}, headers=csrf)
    assert refused.status_code == 400 and github_oauth.revoked == []  # not erased: nothing revoked
    erased = await oauth_client.delete("/api/v1/users/me", json={"password": PASSWORD}, headers=csrf)
    assert erased.status_code == 204 and github_oauth.revoked == [token]


async def test_connect_callback_replayed_or_denied_fails(oauth_client: QuartClient, github_oauth: FakeGitHub) -> None:
    await register(oauth_client)
    started = await oauth_client.get(f"{GITHUB}/connect")
    async with httpx.AsyncClient(timeout=5) as http:
        back = urlsplit((await http.get(started.headers["Location"])).headers["location"])
    first = await oauth_client.get(f"{back.path}?{back.query}")
    assert first.headers["Location"].endswith("status=connected")
    replayed = await oauth_client.get(f"{back.path}?{back.query}")
    assert replayed.headers["Location"] == "http://localhost:5173/settings/github?status=failed"

    github_oauth.deny = True
    _, landing = await connect_journey(oauth_client)
    assert landing.endswith("status=failed")


async def test_connect_callback_from_signed_out_browser_fails(oauth_client: QuartClient) -> None:
    await register(oauth_client)
    started = await oauth_client.get(f"{GITHUB}/connect")
    async with httpx.AsyncClient(timeout=5) as http:
        back = urlsplit((await http.get(started.headers["Location"])).headers["location"])
    jar = oauth_client.cookie_jar
    assert jar is not None
    for cookie in list(jar):
        if cookie.name in {"access_token", "refresh_token"}:  # signed out; the flow's binding cookie stays
            jar.clear(cookie.domain, cookie.path, cookie.name)
    finished = await oauth_client.get(f"{back.path}?{back.query}")
    assert finished.headers["Location"].endswith("status=failed")


async def test_connect_without_github_oauth_configured_is_not_found(client: QuartClient) -> None:
    headers, _ = await new_user(client)
    response = await client.get(f"{GITHUB}/connect", headers=headers)
    assert response.status_code == 404


# --- repositories ----------------------------------------------------------------------------------


async def test_link_public_repository_anonymously_stores_metadata(
    client: QuartClient, github_api: FakeGitHubAPI
) -> None:
    github_api.add_repository("octo/hello", description="Hi", language="Python", stars=42)
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")
    assert repository["full_name"] == "octo/hello"
    assert repository["url"] == "https://github.com/octo/hello"
    assert (repository["description"], repository["language"], repository["stars"]) == ("Hi", "Python", 42)
    assert repository["private"] is False and repository["auto_review"] is False
    assert repository["last_review_at"] is None
    assert github_api.requests[-1] == ("/repos/octo/hello", None)

    listed = await (await client.get(f"{GITHUB}/repositories", headers=headers)).get_json()
    assert [item["id"] for item in listed["items"]] == [repository["id"]]


async def test_link_private_repository_with_connected_token(
    client: QuartClient, github_app: Quart, github_api: FakeGitHubAPI
) -> None:
    github_api.add_repository("octo/secret", private=True, readers={"gho_private"})
    headers, user_id = await new_user(client)
    await store_github_grant(github_app, user_id, "gho_private", "repo")
    repository = await link(client, headers, "octo/secret")
    assert repository["private"] is True
    assert github_api.requests[-1] == ("/repos/octo/secret", "gho_private")


async def test_link_private_repository_without_access_is_not_found(
    client: QuartClient, github_app: Quart, github_api: FakeGitHubAPI
) -> None:
    github_api.add_repository("octo/secret", private=True, readers={"someone-else"})
    anonymous, _ = await new_user(client)
    connected, user_id = await new_user(client)
    await store_github_grant(github_app, user_id, "gho_mine", "repo")
    for headers in (anonymous, connected):
        response = await client.post(
            f"{GITHUB}/repositories", json={"repository_url": "https://github.com/octo/secret"}, headers=headers
        )
        assert response.status_code == 404
        assert (await response.get_json())["code"] == "not_found"
    missing = await client.post(
        f"{GITHUB}/repositories", json={"repository_url": "https://github.com/octo/nothing"}, headers=anonymous
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://github.com/octo/hello",
        "https://gitlab.com/octo/hello",
        "https://github.com.evil.example/octo/hello",
        "https://github.com/octo/hello/tree/main",
        "https://github.com/octo/hello?tab=readme",
        "https://github.com/octo/hello#readme",
        "https://github.com/octo",
        "https://github.com/octo/",
        "https://user@github.com/octo/hello",
        "https://github.com/octo/..",
        "github.com/octo/hello",
        "",
    ],
)
async def test_link_repository_with_invalid_url_is_unprocessable(client: QuartClient, url: str) -> None:
    headers, _ = await new_user(client)
    response = await client.post(f"{GITHUB}/repositories", json={"repository_url": url}, headers=headers)
    assert response.status_code == 422
    body = await response.get_json()
    assert body["code"] == "validation_error"
    assert [error["field"] for error in body["errors"]] == ["repository_url"]


async def test_link_repository_with_git_suffix_and_twice_conflicts(
    client: QuartClient, github_api: FakeGitHubAPI
) -> None:
    github_api.add_repository("octo/hello")
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello.git")
    assert repository["full_name"] == "octo/hello"
    for url in ("https://github.com/octo/hello", "https://github.com/OCTO/Hello.git"):
        again = await client.post(f"{GITHUB}/repositories", json={"repository_url": url}, headers=headers)
        assert again.status_code == 409
        assert (await again.get_json())["code"] == "conflict"
    other_headers, _ = await new_user(client)
    await link(client, other_headers, "octo/hello")  # another user may link the same repository


async def test_update_auto_review_and_list_pulls(client: QuartClient, github_api: FakeGitHubAPI) -> None:
    fake = github_api.add_repository("octo/hello")
    github_api.add_pull(fake, 7, "Add parser", "grace", "parser")
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")

    patched = await client.patch(
        f"{GITHUB}/repositories/{repository['id']}", json={"auto_review": True}, headers=headers
    )
    assert patched.status_code == 200 and (await patched.get_json())["auto_review"] is True

    pulls = await client.get(f"{GITHUB}/repositories/{repository['id']}/pulls", headers=headers)
    assert pulls.status_code == 200
    assert (await pulls.get_json())["items"] == [
        {
            "number": 7,
            "title": "Add parser",
            "author": "grace",
            "head_ref": "parser",
            "updated_at": "2026-11-20T10:00:00Z",
            "html_url": "https://github.com/octo/hello/pull/7",
        }
    ]


async def test_another_users_repository_and_review_are_not_found(
    client: QuartClient, github_api: FakeGitHubAPI
) -> None:
    github_api.add_repository("octo/hello")
    alice, _ = await new_user(client)
    bob, _ = await new_user(client)
    repository = await link(client, alice, "octo/hello")
    review = await (await request_review(client, alice, repository["id"], pull_number=1)).get_json()

    base = f"{GITHUB}/repositories/{repository['id']}"
    attempts = [
        client.patch(base, json={"auto_review": True}, headers=bob),
        client.delete(base, headers=bob),
        client.get(f"{base}/pulls", headers=bob),
        client.get(f"{base}/reviews", headers=bob),
        client.post(f"{base}/reviews", json={"pull_number": 1}, headers=bob),
        client.get(f"{GITHUB}/reviews/{review['id']}", headers=bob),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 404
        assert (await response.get_json())["code"] == "not_found"
    assert (await (await client.get(f"{GITHUB}/repositories", headers=bob)).get_json())["items"] == []
    still = await client.get(f"{GITHUB}/reviews/{review['id']}", headers=alice)
    assert still.status_code == 200


# --- reviews ---------------------------------------------------------------------------------------


async def test_request_review_queues_it(client: QuartClient, github_api: FakeGitHubAPI) -> None:
    github_api.add_repository("octo/hello", default_branch="trunk")
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")

    response = await request_review(
        client, headers, repository["id"], pull_number=5, focus_areas=["security", "testing", "security"]
    )
    assert response.status_code == 202
    review = await response.get_json()
    assert review["status"] == "queued" and review["pull_number"] == 5
    assert review["repository_id"] == repository["id"]
    assert review["comments"] == [] and review["files_skipped"] == [] and review["files_reviewed"] == 0
    assert review["progress"] is None and review["summary"] is None and review["completed_at"] is None

    by_paths = await (await request_review(client, headers, repository["id"], paths=["a.py", "b.py"])).get_json()
    assert by_paths["ref"] == "trunk" and by_paths["pull_number"] is None

    fetched = await (await client.get(f"{GITHUB}/reviews/{review['id']}", headers=headers)).get_json()
    # the background job may already have started on it: compare what the request fixed
    assert {key: fetched[key] for key in ("id", "repository_id", "pull_number", "ref", "created_at")} == {
        key: review[key] for key in ("id", "repository_id", "pull_number", "ref", "created_at")
    }
    page = await (await client.get(f"{GITHUB}/repositories/{repository['id']}/reviews", headers=headers)).get_json()
    assert page["total"] == 2 and [item["id"] for item in page["items"]] == [by_paths["id"], review["id"]]
    assert (page["limit"], page["offset"]) == (20, 0)
    reviews = f"{GITHUB}/repositories/{repository['id']}/reviews?limit=1&offset=1"
    second = await (await client.get(reviews, headers=headers)).get_json()
    assert [item["id"] for item in second["items"]] == [review["id"]]
    assert (second["total"], second["limit"], second["offset"]) == (2, 1, 1)
    listed = await (await client.get(f"{GITHUB}/repositories", headers=headers)).get_json()
    assert listed["items"][0]["last_review_at"] is not None
    export = await (await client.get("/api/v1/users/me/export", headers=headers)).get_json()
    assert export["repositories"] == listed["items"]
    assert [{key: item[key] for key in ("id", "pull_number", "ref", "created_at")} for item in export["reviews"]] == [
        {key: item[key] for key in ("id", "pull_number", "ref", "created_at")} for item in (review, by_paths)
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pull_number": 1, "paths": ["a.py"]}, "paths"),
        ({"pull_number": 1, "ref": "main"}, "ref"),
        ({"pull_number": 0}, "pull_number"),
        ({"paths": [f"f{i}.py" for i in range(101)]}, "paths"),
        ({"paths": []}, "paths"),
        ({"pull_number": 1, "focus_areas": ["style"]}, "focus_areas.0"),
    ],
)
async def test_request_review_with_invalid_body_is_unprocessable(
    client: QuartClient, github_api: FakeGitHubAPI, body: dict[str, Any], field: str
) -> None:
    github_api.add_repository("octo/hello")
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")
    response = await request_review(client, headers, repository["id"], **body)
    assert response.status_code == 422
    assert field in [error["field"] for error in (await response.get_json())["errors"]]


async def test_unlink_repository_keeps_its_reviews(client: QuartClient, github_api: FakeGitHubAPI) -> None:
    github_api.add_repository("octo/hello")
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")
    review = await (await request_review(client, headers, repository["id"], pull_number=2)).get_json()

    assert (await client.delete(f"{GITHUB}/repositories/{repository['id']}", headers=headers)).status_code == 204
    assert (await (await client.get(f"{GITHUB}/repositories", headers=headers)).get_json())["items"] == []
    kept = await client.get(f"{GITHUB}/reviews/{review['id']}", headers=headers)
    assert kept.status_code == 200
    assert (await kept.get_json())["repository_id"] is None

    export = await (await client.get("/api/v1/users/me/export", headers=headers)).get_json()
    assert [item["id"] for item in export["reviews"]] == [review["id"]]
    assert export["repositories"] == []


# --- webhook ---------------------------------------------------------------------------------------


async def auto_review_repository(client: QuartClient, github_api: FakeGitHubAPI, *, auto_review: bool) -> int:
    fake = github_api.add_repository("octo/auto")
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/auto")
    await client.patch(f"{GITHUB}/repositories/{repository['id']}", json={"auto_review": auto_review}, headers=headers)
    return fake.id


async def test_webhook_pull_request_with_auto_review_queues_a_review(
    client: QuartClient, github_app: Quart, github_api: FakeGitHubAPI
) -> None:
    github_id = await auto_review_repository(client, github_api, auto_review=True)
    response = await deliver(client, "pull_request", pull_request_event(github_id, "synchronize", number=9))
    assert response.status_code == 202
    queued = (await response.get_json())["queued"]
    assert isinstance(queued, int)
    async with github_app.extensions["db_session_factory"]() as session:
        review = await session.get_one(Review, queued)
    assert (review.pull_number, review.ref) == (9, "feature")  # its job may already be running it

    closed = await deliver(client, "pull_request", pull_request_event(github_id, "closed"))
    assert (await closed.get_json()) == {"queued": None}


async def test_webhook_pull_request_with_auto_review_off_queues_nothing(
    client: QuartClient, github_api: FakeGitHubAPI
) -> None:
    github_id = await auto_review_repository(client, github_api, auto_review=False)
    response = await deliver(client, "pull_request", pull_request_event(github_id))
    assert response.status_code == 202 and (await response.get_json()) == {"queued": None}
    unknown = await deliver(client, "pull_request", pull_request_event(github_id + 999))
    assert (await unknown.get_json()) == {"queued": None}


async def test_webhook_ping_is_accepted(client: QuartClient) -> None:
    response = await deliver(client, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1})
    assert response.status_code == 202 and (await response.get_json()) == {"queued": None}


@pytest.mark.parametrize("signature", [None, "", "sha256=" + "0" * 64, "sha1=abc", "garbage"])
async def test_webhook_with_bad_or_missing_signature_is_unauthorized(
    client: QuartClient, signature: str | None
) -> None:
    response = await deliver(client, "ping", {"zen": "hi"}, signature=signature)
    assert response.status_code == 401
    assert (await response.get_json())["code"] == "unauthorized"


async def test_webhook_signed_with_another_secret_is_unauthorized(client: QuartClient) -> None:
    response = await deliver(client, "ping", {"zen": "hi"}, signature=signed(b'{"zen": "hi"}', "another-secret"))
    assert response.status_code == 401


async def test_webhook_replayed_delivery_is_ignored(
    client: QuartClient, github_app: Quart, github_api: FakeGitHubAPI
) -> None:
    github_id = await auto_review_repository(client, github_api, auto_review=True)
    event = pull_request_event(github_id)
    first = await deliver(client, "pull_request", event, delivery="delivery-42")
    assert isinstance((await first.get_json())["queued"], int)
    again = await deliver(client, "pull_request", event, delivery="delivery-42")
    assert again.status_code == 202 and (await again.get_json()) == {"queued": None}
    # The delivery header is not signed: a replay under a new one is still the same signed body.
    renamed = await deliver(client, "pull_request", event, delivery="delivery-43")
    assert renamed.status_code == 202 and (await renamed.get_json()) == {"queued": None}
    unnamed = await deliver(client, "pull_request", event, delivery=None)
    assert unnamed.status_code == 400
    async with github_app.extensions["db_session_factory"]() as session:
        assert await session.scalar(select(func.count()).select_from(Review)) == 1


async def test_webhook_without_configured_secret_is_unauthorized(sqlite_url: str) -> None:
    application = create_app(make_settings(database_url=sqlite_url))
    async with application.test_app():
        body = b'{"zen": "hi"}'
        response = await application.test_client().post(
            f"{GITHUB}/webhook",
            data=body,
            headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": signed(body, ""), "X-GitHub-Delivery": "x"},
        )
        assert response.status_code == 401
