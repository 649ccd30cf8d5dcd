"""The GitHub REST API through PyGithub: repository metadata and open pull requests.

PyGithub is synchronous, so every call runs in a worker thread (`asyncio.to_thread`) and never blocks
the event loop. Calls use the user's token when there is one (private repositories) and are anonymous
otherwise. `GITHUB_API_URL` is the base URL (GitHub Enterprise, or a fake in tests). Nothing here
touches the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import requests
import structlog
from github import Auth, Github, GithubException, UnknownObjectException

from backend.config import Settings
from backend.errors import NotFound, UpstreamError

TIMEOUT_SECONDS = 15
MAX_PULLS = 100

T = TypeVar("T")
log = structlog.get_logger(__name__)


class GitHubNotFound(NotFound):
    detail = "GitHub does not show this repository to you."


class GitHubUnavailable(UpstreamError):
    detail = "GitHub could not be reached or answered with an error."


@dataclass(frozen=True)
class RepositoryInfo:
    github_id: int
    full_name: str
    html_url: str
    description: str | None
    language: str | None
    default_branch: str
    private: bool
    stars: int


@dataclass(frozen=True)
class PullInfo:
    number: int
    title: str
    author: str | None
    head_ref: str
    updated_at: datetime | None
    html_url: str


class GitHubClient:
    """One configured API endpoint; each call takes the token to act with (None: anonymous)."""

    def __init__(self, settings: Settings) -> None:
        self.base_url = settings.github_api_url

    def _github(self, token: str | None, *, lazy: bool = False) -> Github:
        return Github(
            lazy=lazy,
            auth=Auth.Token(token) if token else None,
            base_url=self.base_url,
            timeout=TIMEOUT_SECONDS,
            retry=None,  # a browser waits on these calls; fail fast instead of backing off for minutes
            seconds_between_requests=None,
            seconds_between_writes=None,
        )

    async def get_repository(self, full_name: str, *, token: str | None) -> RepositoryInfo:
        """The repository's metadata; `GitHubNotFound` when it is missing or hidden from this token."""

        def fetch() -> RepositoryInfo:
            repo = self._github(token).get_repo(full_name)
            return RepositoryInfo(
                github_id=repo.id,
                full_name=repo.full_name,
                html_url=repo.html_url,
                description=repo.description,
                language=repo.language,
                default_branch=repo.default_branch or "main",
                private=bool(repo.private),
                stars=repo.stargazers_count or 0,
            )

        return await _call("get_repository", fetch)

    async def list_open_pulls(self, full_name: str, *, token: str | None) -> list[PullInfo]:
        """The repository's open pull requests, most recently updated first (at most `MAX_PULLS`)."""

        def fetch() -> list[PullInfo]:
            repo = self._github(token, lazy=True).get_repo(full_name)  # no request until the pulls
            pulls = repo.get_pulls(state="open", sort="updated", direction="desc")
            return [
                PullInfo(
                    number=pull.number,
                    title=pull.title,
                    author=pull.user.login if pull.user else None,
                    head_ref=pull.head.ref,
                    updated_at=_utc(pull.updated_at),
                    html_url=pull.html_url,
                )
                for pull in pulls[:MAX_PULLS]
            ]

        return await _call("list_open_pulls", fetch)


async def _call(operation: str, func: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(func)
    except UnknownObjectException as error:
        raise GitHubNotFound() from error
    except (GithubException, requests.RequestException) as error:
        status = getattr(error, "status", None)
        log.warning("github.call_failed", operation=operation, status=status, error_type=type(error).__name__)
        raise GitHubUnavailable() from error


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
