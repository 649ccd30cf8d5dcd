"""GitHub: the connection (a stored token with the `repo` scope), linked repositories, review requests
and webhook events.

A user who signed in with GitHub holds an OAuthAccount too, but only a grant that includes `repo` counts
as connected: the scopes stored with the token decide. Calls to GitHub never run inside an open
transaction (on SQLite every transaction holds the write lock): what is read first is committed, then
GitHub is asked, then the short write follows.

Reviews are created `queued` together with their background job (kind "review", in the same
transaction, so neither exists without the other); the job itself and publishing live in
`services/reviews.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend import jobs
from backend.config import Settings
from backend.db import utcnow
from backend.errors import BadRequest, Conflict, NotFound, Unauthorized, ValidationFailed
from backend.integrations.github import GitHubClient, PullInfo
from backend.integrations.oauth import Identity
from backend.models import OAuthAccount, Repository, Review, User, WebhookDelivery
from backend.security import TokenCipher
from backend.services.oauth import OAuthFailed, store_grant

REPO_SCOPE = "repo"
AUTO_REVIEW_ACTIONS = frozenset({"opened", "synchronize"})
SIGNATURE_PREFIX = "sha256="
REVIEW_JOB = "review"  # registered by backend.services.reviews

log = structlog.get_logger(__name__)
security_log = structlog.get_logger("backend.security")


class RepositoryNotFound(NotFound):
    detail = "Repository not found."


class ReviewNotFound(NotFound):
    detail = "Review not found."


class RepositoryAlreadyLinked(Conflict):
    detail = "This repository is already linked."


class WebhookDeliveryMissing(BadRequest):
    detail = "The X-GitHub-Delivery header is missing."


class WebhookSignatureInvalid(Unauthorized):
    detail = "The webhook signature is missing or invalid."


# --- connection ------------------------------------------------------------------------------------


def has_repo_scope(account: OAuthAccount | None) -> bool:
    return bool(account is not None and account.access_token_encrypted and REPO_SCOPE in (account.scopes or "").split())


async def _github_account(session: AsyncSession, user: User) -> OAuthAccount | None:
    return await session.scalar(
        select(OAuthAccount).where(OAuthAccount.user_id == user.id, OAuthAccount.provider == "github")
    )


async def connected_account(session: AsyncSession, user: User) -> OAuthAccount | None:
    """The user's GitHub link when it is connected for repositories (a token with `repo`), else None."""
    account = await _github_account(session, user)
    return account if has_repo_scope(account) else None


async def connect(session: AsyncSession, settings: Settings, user: User, identity: Identity) -> bool:
    """Keep the grant of a finished connect flow on the user's GitHub link: True when it includes `repo`.

    A GitHub account already linked to someone else, or a second GitHub account, is refused: the link is
    also a way to sign in, and one account must not sign in to two users."""
    account = await session.scalar(
        select(OAuthAccount).where(
            OAuthAccount.provider == "github", OAuthAccount.provider_user_id == identity.provider_user_id
        )
    )
    if account is not None and account.user_id != user.id:
        raise OAuthFailed("github_account_of_another_user")
    if account is None:
        if await _github_account(session, user) is not None:
            raise OAuthFailed("another_github_account_linked")
        account = OAuthAccount(user_id=user.id, provider="github", provider_user_id=identity.provider_user_id)
        session.add(account)
    store_grant(account, identity, TokenCipher(settings))
    account.updated_at = utcnow()  # `connected_at`, even when the grant did not change
    await session.flush()
    log.info("github.connected", user_id=user.id, has_repo_scope=has_repo_scope(account))
    return has_repo_scope(account)


async def disconnect(session: AsyncSession, settings: Settings, user: User) -> str | None:
    """Forget the token and its scopes; the account link itself stays, for signing in with GitHub. Returns
    the forgotten token, for the caller to revoke at GitHub (`GitHub.revoke`)."""
    account = await _github_account(session, user)
    if account is None:
        return None
    token = stored_token(settings, account)
    account.access_token_encrypted = account.refresh_token_encrypted = account.scopes = None
    await session.flush()
    log.info("github.disconnected", user_id=user.id)
    return token


def stored_token(settings: Settings, account: OAuthAccount) -> str | None:
    return TokenCipher(settings).decrypt(account.access_token_encrypted) if account.access_token_encrypted else None


async def user_token(session: AsyncSession, settings: Settings, user: User, *, repo: bool = True) -> str | None:
    """The user's GitHub token when connected (with `repo`), else None: act anonymously. With `repo=False`,
    whatever token is stored (to revoke it when the account goes)."""
    account = await _github_account(session, user)
    if account is None or (repo and not has_repo_scope(account)):
        return None
    return stored_token(settings, account)


# --- repositories ----------------------------------------------------------------------------------


async def list_repositories(session: AsyncSession, user: User) -> list[Repository]:
    rows = await session.scalars(
        select(Repository).where(Repository.user_id == user.id).order_by(Repository.linked_at.desc(), Repository.id)
    )
    return list(rows)


async def get_repository(session: AsyncSession, user: User, repository_id: int) -> Repository:
    """A repository `user` linked; someone else's is indistinguishable from a missing one."""
    repository = await session.scalar(
        select(Repository).where(Repository.id == repository_id, Repository.user_id == user.id)
    )
    if repository is None:
        raise RepositoryNotFound()
    return repository


async def _linked(session: AsyncSession, user: User, full_name: str) -> bool:
    found = await session.scalar(
        select(Repository.id).where(
            Repository.user_id == user.id, func.lower(Repository.full_name) == full_name.lower()
        )
    )
    return found is not None


async def link_repository(
    session: AsyncSession, settings: Settings, github: GitHubClient, user: User, full_name: str
) -> Repository:
    """Link a repository by its `owner/name`, with its metadata as GitHub shows it to the user (or to anyone)."""
    if await _linked(session, user, full_name):
        raise RepositoryAlreadyLinked()
    token = await user_token(session, settings, user)
    await session.commit()  # end the read transaction before GitHub is awaited
    info = await github.get_repository(full_name, token=token)
    # GitHub answers with the canonical name (case, renames): check again under that name.
    if await _linked(session, user, info.full_name):
        raise RepositoryAlreadyLinked()
    repository = Repository(
        user_id=user.id,
        github_id=info.github_id,
        full_name=info.full_name,
        url=info.html_url,
        description=info.description,
        language=info.language,
        default_branch=info.default_branch,
        private=info.private,
        stars=info.stars,
    )
    session.add(repository)
    try:
        await session.flush()
    except IntegrityError as error:  # linked by a concurrent request in between
        raise RepositoryAlreadyLinked() from error
    log.info("github.repository_linked", user_id=user.id, repository_id=repository.id, private=info.private)
    return repository


async def set_auto_review(session: AsyncSession, user: User, repository_id: int, auto_review: bool) -> Repository:
    repository = await get_repository(session, user, repository_id)
    repository.auto_review = auto_review
    await session.flush()
    return repository


async def unlink_repository(session: AsyncSession, user: User, repository_id: int) -> None:
    """Unlink; its reviews stay (their `repository_id` becomes null through ON DELETE SET NULL)."""
    repository = await get_repository(session, user, repository_id)
    await session.delete(repository)
    await session.flush()
    log.info("github.repository_unlinked", user_id=user.id, repository_id=repository_id)


async def list_pulls(
    session: AsyncSession, settings: Settings, github: GitHubClient, user: User, repository_id: int
) -> list[PullInfo]:
    repository = await get_repository(session, user, repository_id)
    token = await user_token(session, settings, user)
    full_name = repository.full_name
    await session.commit()  # nothing to write; do not hold the transaction across the GitHub call
    return await github.list_open_pulls(full_name, token=token)


# --- reviews ---------------------------------------------------------------------------------------


async def request_review(
    session: AsyncSession,
    user: User,
    repository_id: int,
    *,
    pull_number: int | None,
    paths: list[str] | None,
    ref: str | None,
    focus_areas: Iterable[str],
) -> Review:
    """A queued review of a pull request, of chosen paths at a ref, or (neither given) of the whole
    repository at `ref`; a ref defaults to the default branch."""
    repository = await get_repository(session, user, repository_id)
    if pull_number is not None and paths is not None:
        raise ValidationFailed(errors=[{"field": "paths", "message": "Give pull_number or paths, not both"}])
    if pull_number is not None and ref is not None:
        raise ValidationFailed(errors=[{"field": "ref", "message": "ref goes with paths; a pull request has its own"}])
    return await _queue_review(
        session,
        user_id=user.id,
        repository=repository,
        pull_number=pull_number,
        ref=ref,
        paths=paths,
        focus_areas=list(dict.fromkeys(focus_areas)),
    )


async def _queue_review(
    session: AsyncSession,
    *,
    user_id: int,
    repository: Repository,
    pull_number: int | None,
    ref: str | None,
    paths: list[str] | None,
    focus_areas: list[str],
) -> Review:
    if pull_number is None and ref is None:  # paths, or the whole repository, at the default branch
        ref = repository.default_branch
    review = Review(
        user_id=user_id,
        repository_id=repository.id,
        pull_number=pull_number,
        ref=ref,
        paths=list(dict.fromkeys(paths)) if paths is not None else None,
        focus_areas=focus_areas,
        status="queued",
        comments=[],
        files_skipped=[],
    )
    session.add(review)
    repository.last_review_at = utcnow()
    await session.flush()
    await jobs.enqueue(session, REVIEW_JOB, {"review_id": review.id})
    log.info("github.review_queued", user_id=user_id, review_id=review.id, repository_id=repository.id)
    return review


async def list_reviews(
    session: AsyncSession, user: User, repository_id: int, *, limit: int, offset: int
) -> tuple[list[Review], int]:
    await get_repository(session, user, repository_id)
    where = (Review.user_id == user.id, Review.repository_id == repository_id)
    total = await session.scalar(select(func.count()).select_from(Review).where(*where)) or 0
    rows = await session.scalars(
        select(Review).where(*where).order_by(Review.created_at.desc(), Review.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total


async def get_review(session: AsyncSession, user: User, review_id: int) -> Review:
    review = await session.scalar(select(Review).where(Review.id == review_id, Review.user_id == user.id))
    if review is None:
        raise ReviewNotFound()
    return review


# --- webhook ---------------------------------------------------------------------------------------

DELIVERY_KEY_PREFIX = "sha256:"  # webhook_deliveries.delivery_id holds the SHA-256 of the signed body


@dataclass(frozen=True)
class WebhookEvent:
    event: str | None
    delivery_id: str | None
    body: bytes
    signature: str | None


def verify_signature(settings: Settings, body: bytes, signature: str | None) -> None:
    """`X-Hub-Signature-256` must be the HMAC-SHA256 of the body under GITHUB_WEBHOOK_SECRET.

    Without a configured secret nothing can be verified, so everything is refused."""
    secret = settings.github_webhook_secret
    if secret is None or not secret.get_secret_value():
        raise WebhookSignatureInvalid()
    expected = SIGNATURE_PREFIX + hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    if not signature or not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        security_log.warning("github.webhook_signature_invalid", has_signature=bool(signature))
        raise WebhookSignatureInvalid()


async def handle_webhook(session: AsyncSession, settings: Settings, event: WebhookEvent) -> int | None:
    """Verify, de-duplicate and act on one delivery: the id of the review it queued, if any."""
    verify_signature(settings, event.body, event.signature)
    if not event.delivery_id:
        raise WebhookDeliveryMissing()
    # A replay is recognised by what the signature covers, the body: `X-GitHub-Delivery` is not signed,
    # so an attacker replaying a captured delivery would simply change it.
    if not await _first_delivery(session, DELIVERY_KEY_PREFIX + hashlib.sha256(event.body).hexdigest()):
        log.info("github.webhook_replayed", github_event=event.event)
        return None
    if event.event != "pull_request":
        return None  # `ping` and every other event: accepted, nothing to do
    try:
        payload = json.loads(event.body)
    except ValueError:
        return None
    return await _auto_review(session, payload) if isinstance(payload, dict) else None


async def _first_delivery(session: AsyncSession, delivery_id: str) -> bool:
    try:
        async with session.begin_nested():
            session.add(WebhookDelivery(delivery_id=delivery_id))
    except IntegrityError:
        return False
    return True


async def _auto_review(session: AsyncSession, payload: dict[str, Any]) -> int | None:
    pull = payload.get("pull_request")
    repo = payload.get("repository")
    if payload.get("action") not in AUTO_REVIEW_ACTIONS or not isinstance(pull, dict) or not isinstance(repo, dict):
        return None
    number, github_id = pull.get("number"), repo.get("id")
    if not isinstance(number, int) or not isinstance(github_id, int):
        return None
    # Several users may have linked the same repository; each with auto review on gets a review, unless
    # their account is disabled (its GitHub token and AI budget no longer act for anyone).
    repositories = await session.scalars(
        select(Repository)
        .join(User, User.id == Repository.user_id)
        .where(Repository.github_id == github_id, Repository.auto_review.is_(True), User.is_active.is_(True))
        .order_by(Repository.id)
    )
    head = pull.get("head")
    head_ref = head.get("ref") if isinstance(head, dict) and isinstance(head.get("ref"), str) else None
    queued: int | None = None
    for repository in repositories:
        review = await _queue_review(
            session,
            user_id=repository.user_id,
            repository=repository,
            pull_number=number,
            ref=head_ref[:255] if head_ref else None,
            paths=None,
            focus_areas=[],
        )
        queued = queued or review.id
    return queued


# --- export ----------------------------------------------------------------------------------------
# The rows as they are: the export schema's sections pick their fields (as the API's reads do).


async def export_repositories(session: AsyncSession, user: User) -> list[Repository]:
    return await list_repositories(session, user)


async def export_reviews(session: AsyncSession, user: User) -> list[Review]:
    return list(await session.scalars(select(Review).where(Review.user_id == user.id).order_by(Review.id)))
