"""GitHub connection, linked repositories and AI code reviews."""

from __future__ import annotations

import structlog
from quart import Blueprint, Response, current_app, request
from quart.blueprints import BlueprintSetupState
from quart_schema import document_querystring, tag_blueprint, validate_querystring, validate_request, validate_response

from backend.api.guards import authenticate_request, current_user, require_user, settings
from backend.api.oauth import found, to_provider
from backend.api.openapi import no_content, problem_responses, redirects
from backend.cache import get_cache
from backend.db import discard_changes, get_session
from backend.errors import NotFound
from backend.integrations.github import GitHubClient
from backend.integrations.oauth import GitHubRepositoryAccess, OAuthProviderError
from backend.integrations.tls import client_ssl_context
from backend.middleware.rate_limit import rate_limit
from backend.schemas.auth import OAuthCallbackQuery
from backend.schemas.common import PageQuery
from backend.schemas.github import (
    GitHubConnection,
    PullList,
    PullRead,
    RepositoryCreate,
    RepositoryList,
    RepositoryRead,
    RepositoryUpdate,
    ReviewCreate,
    ReviewPage,
    ReviewPublished,
    ReviewRead,
    WebhookAccepted,
)
from backend.services import github as github_service
from backend.services import oauth as oauth_service
from backend.services import reviews as review_service

bp = Blueprint("github", __name__)
tag_blueprint(bp, ["github"])

GITHUB_EXTENSION = "github_client"
CONNECT_EXTENSION = "github_repository_access"
CALLBACK_PATH_CONFIG = "GITHUB_CALLBACK_PATH"
BINDING_COOKIE = "github_connect_binding"

log = structlog.get_logger(__name__)
security_log = structlog.get_logger("backend.security")


@bp.record_once
def _create_clients(state: BlueprintSetupState) -> None:
    """The REST client, and the OAuth client of the connect flow when a GitHub OAuth app is configured."""
    config = state.app.config["SETTINGS"]
    state.app.extensions[GITHUB_EXTENSION] = GitHubClient(config)
    callback_path = f"{state.url_prefix or ''}/callback"
    state.app.config[CALLBACK_PATH_CONFIG] = callback_path
    state.app.extensions[CONNECT_EXTENSION] = None
    if config.github_client_id and config.github_client_secret:
        state.app.extensions[CONNECT_EXTENSION] = GitHubRepositoryAccess(
            config,
            config.github_client_secret.get_secret_value(),
            f"{config.backend_url}{callback_path}",
            client_ssl_context(),
        )


def github_client() -> GitHubClient:
    return current_app.extensions[GITHUB_EXTENSION]


def repository_access() -> GitHubRepositoryAccess:
    provider = current_app.extensions[CONNECT_EXTENSION]
    if provider is None:
        raise NotFound("GitHub is not configured on this server.")
    return provider


def to_settings_page(status: str) -> Response:
    """Where every connect flow ends: the SPA's GitHub settings, with `connected` or `failed`."""
    response = found(f"{settings().frontend_url}/settings/github?status={status}")
    response.delete_cookie(
        BINDING_COOKIE,
        path=current_app.config[CALLBACK_PATH_CONFIG],
        secure=settings().is_production,
        httponly=True,
        samesite="Lax",
    )
    return response


@bp.get("/connection")
@require_user
@validate_response(GitHubConnection)
async def get_github_connection() -> GitHubConnection:
    """Whether your GitHub account is connected for repositories (a token with the `repo` scope).

    Signing in with GitHub alone does not connect it: that grant has no repository access."""
    return GitHubConnection.of(await github_service.connected_account(get_session(), current_user()))


@bp.get("/connect")
@require_user
@rate_limit("oauth_start")
@redirects("To GitHub's consent page for the `repo` scope, or to `FRONTEND_URL/settings/github?status=failed`.")
@problem_responses(404, 429)
async def connect_github() -> Response:
    """Connect GitHub for repositories: 302 to GitHub's consent page for the `repo` scope (state, PKCE).

    GitHub sends the browser back to `/github/callback`, which ends at
    `FRONTEND_URL/settings/github?status=connected|failed`. 404 when GitHub OAuth is not configured."""
    provider = repository_access()
    try:
        flow = await oauth_service.start(get_cache(), provider, redirect_to=None)
    except Exception:  # the cache is down, or the provider: a browser waits on this answer
        log.exception("github.connect_failed", reason="start_failed")
        return to_settings_page("failed")
    return to_provider(flow, cookie=BINDING_COOKIE, path=current_app.config[CALLBACK_PATH_CONFIG])


@bp.get("/callback")
@document_querystring(OAuthCallbackQuery)
@redirects("To `FRONTEND_URL/settings/github?status=connected` or `?status=failed`.")
async def finish_github_connect() -> Response:
    """Where GitHub sends the browser back: stores the token encrypted, then 302 to the SPA.

    `FRONTEND_URL/settings/github?status=connected`, or `status=failed` for any failure (denied consent,
    a state that is unknown, replayed or from another browser, a signed-out browser, no `repo` scope)."""
    session = get_session()
    try:
        user = await authenticate_request()
        _, identity = await oauth_service.authenticate(
            get_cache(),
            repository_access(),
            code=request.args.get("code"),
            state=request.args.get("state"),
            error=request.args.get("error"),
            binding=request.cookies.get(BINDING_COOKIE),
        )
        is_connected = await github_service.connect(session, settings(), user, identity)
    except oauth_service.OAuthFailed as failure:
        security_log.warning("github.connect_failed", reason=failure.reason)
        discard_changes()  # a redirect is < 400, which would otherwise commit
        return to_settings_page("failed")
    except Exception:  # signed out, GitHub not configured, or a bug: the settings page beats a JSON error
        log.warning("github.connect_failed", reason="internal_error", exc_info=True)
        discard_changes()
        return to_settings_page("failed")
    return to_settings_page("connected" if is_connected else "failed")


@bp.delete("/connection")
@require_user
@no_content
async def delete_github_connection() -> tuple[str, int]:
    """Disconnect GitHub: the stored token is forgotten and revoked at GitHub; signing in with GitHub keeps
    working. GitHub being unreachable never keeps you connected here (the revocation is then logged)."""
    user = current_user()
    await revoke_at_github(await github_service.disconnect(get_session(), settings(), user), user.id)
    return "", 204


async def revoke_at_github(token: str | None, user_id: int) -> None:
    """Best effort: a token we forget should stop working at GitHub too; when GitHub cannot be reached, the
    forgetting stands and the failure is logged (the student can still revoke it in GitHub's settings)."""
    provider = current_app.extensions[CONNECT_EXTENSION]
    if token is None or provider is None:
        return
    try:
        await provider.revoke(token)
    except OAuthProviderError as error:
        log.warning("github.revoke_failed", user_id=user_id, reason=str(error))


@bp.get("/repositories")
@require_user
@validate_response(RepositoryList)
async def list_repositories() -> RepositoryList:
    """Your linked repositories, most recently linked first (items only)."""
    rows = await github_service.list_repositories(get_session(), current_user())
    return RepositoryList(items=[RepositoryRead.model_validate(row) for row in rows])


@bp.post("/repositories")
@require_user
@rate_limit("github")
@validate_request(RepositoryCreate)
@validate_response(RepositoryRead, 201)
@problem_responses(404, 409, 429, 502)
async def link_repository(data: RepositoryCreate) -> tuple[RepositoryRead, int]:
    """Link a repository by its `https://github.com/{owner}/{repo}` URL.

    Metadata comes from GitHub with your token when connected (private repositories), else anonymously.
    422 for any other URL; 404 when GitHub does not show it to you; 409 if already linked."""
    repository = await github_service.link_repository(
        get_session(), settings(), github_client(), current_user(), data.full_name
    )
    return RepositoryRead.model_validate(repository), 201


@bp.patch("/repositories/<int:repository_id>")
@require_user
@validate_request(RepositoryUpdate)
@validate_response(RepositoryRead)
async def update_repository(repository_id: int, data: RepositoryUpdate) -> RepositoryRead:
    """Turn automatic reviews of new and updated pull requests on or off."""
    repository = await github_service.set_auto_review(get_session(), current_user(), repository_id, data.auto_review)
    return RepositoryRead.model_validate(repository)


@bp.delete("/repositories/<int:repository_id>")
@require_user
@no_content
async def unlink_repository(repository_id: int) -> tuple[str, int]:
    """Unlink a repository; its reviews are kept (with `repository_id` null)."""
    await github_service.unlink_repository(get_session(), current_user(), repository_id)
    return "", 204


@bp.get("/repositories/<int:repository_id>/pulls")
@require_user
@rate_limit("github")
@validate_response(PullList)
@problem_responses(429, 502)
async def list_pull_requests(repository_id: int) -> PullList:
    """The repository's open pull requests, most recently updated first (items only)."""
    pulls = await github_service.list_pulls(get_session(), settings(), github_client(), current_user(), repository_id)
    return PullList(items=[PullRead.model_validate(pull, from_attributes=True) for pull in pulls])


@bp.post("/repositories/<int:repository_id>/reviews")
@require_user
@rate_limit("review")
@validate_request(ReviewCreate)
@validate_response(ReviewRead, 202)
@problem_responses(429)
async def request_review(repository_id: int, data: ReviewCreate) -> tuple[ReviewRead, int]:
    """Ask for a review of a pull request, of paths at a ref, or of the whole repository: 202, `status: queued`.

    `pull_number`, or `paths` (at most 100) at `ref`, or neither: the repository at `ref` (`{ref}` alone or
    `{}`: its most relevant code files first). A ref defaults to the default branch. Poll `GET /reviews/{id}`
    (`progress` while running). A background job reviews at most 100 files (deleted, vendored, generated,
    binary and oversized files are listed in `files_skipped`) with the AI model, or with the static review
    (`model: "static"`) when none is configured, or the model is down or answers nonsense twice. A review
    with nothing to read still completes, its summary saying why; only GitHub failures end it `failed`."""
    review = await github_service.request_review(
        get_session(),
        current_user(),
        repository_id,
        pull_number=data.pull_number,
        paths=data.paths,
        ref=data.ref,
        focus_areas=data.focus_areas,
    )
    return ReviewRead.model_validate(review), 202


@bp.get("/repositories/<int:repository_id>/reviews")
@require_user
@validate_querystring(PageQuery)
@validate_response(ReviewPage)
async def list_reviews(repository_id: int, query_args: PageQuery) -> ReviewPage:
    """A page of the repository's reviews, newest first."""
    rows, total = await github_service.list_reviews(
        get_session(), current_user(), repository_id, limit=query_args.limit, offset=query_args.offset
    )
    return ReviewPage.of(rows, total, query_args)


@bp.get("/reviews/<int:review_id>")
@require_user
@validate_response(ReviewRead)
async def get_review(review_id: int) -> ReviewRead:
    """One review: its status, and its result once completed."""
    return ReviewRead.model_validate(await github_service.get_review(get_session(), current_user(), review_id))


@bp.post("/reviews/<int:review_id>/publish")
@require_user
@rate_limit("github")
@validate_response(ReviewPublished)
@problem_responses(409, 429, 502)
async def publish_review(review_id: int) -> ReviewPublished:
    """Post a completed review on its pull request, as you (a `COMMENT` review): 200 `{html_url}`.

    Comments on lines of the pull request's current diff are posted inline, the others in the review's
    body. 409 `conflict` when the review has no pull request, is not completed, its repository was
    unlinked, or GitHub is not connected for repositories; 404 for a review that is not yours;
    502 `upstream_error` when GitHub fails."""
    html_url = await review_service.publish(get_session(), settings(), github_client(), current_user(), review_id)
    return ReviewPublished(html_url=html_url)


@bp.post("/webhook")
@validate_response(WebhookAccepted, 202)
@problem_responses(400, 401)
async def receive_github_webhook() -> tuple[WebhookAccepted, int]:
    """GitHub's webhook: verified by `X-Hub-Signature-256` (401 `unauthorized` otherwise).

    `pull_request` opened/synchronize on a linked repository with auto review on queues a review;
    `ping`, replayed deliveries (the same signed body again) and every other event are accepted and
    ignored; 400 without `X-GitHub-Delivery`. No cookies: no CSRF."""
    event = github_service.WebhookEvent(
        event=request.headers.get("X-GitHub-Event"),
        delivery_id=request.headers.get("X-GitHub-Delivery"),
        body=await request.get_data(cache=True, as_text=False, parse_form_data=False),
        signature=request.headers.get("X-Hub-Signature-256"),
    )
    queued = await github_service.handle_webhook(get_session(), settings(), event)
    return WebhookAccepted(queued=queued), 202
