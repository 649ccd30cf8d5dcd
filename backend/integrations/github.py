"""The GitHub REST API through PyGithub: repository metadata, pull requests and their changed files,
file contents at a ref, and publishing a review on a pull request.

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
from itertools import islice
from typing import TypeVar

import requests
import structlog
from github import Auth, BadCredentialsException, Github, GithubException, UnknownObjectException
from github.PullRequest import PullRequest

from backend.config import Settings
from backend.errors import NotFound, UpstreamError

TIMEOUT_SECONDS = 15
MAX_PULLS = 100
MAX_PULL_FILES = 300  # GitHub lists at most 3000; a review looks at 100, the rest is only counted as skipped

T = TypeVar("T")
log = structlog.get_logger(__name__)


class GitHubNotFound(NotFound):
    detail = "GitHub does not show this repository to you."


class GitHubUnavailable(UpstreamError):
    detail = "GitHub could not be reached or answered with an error."


class GitHubTokenRejected(GitHubUnavailable):
    detail = "GitHub refused the stored token (revoked or expired); connect GitHub again."


class PullRequestNotFound(GitHubNotFound):
    detail = "GitHub does not show this pull request to you."


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


@dataclass(frozen=True)
class PullFile:
    """One file a pull request changes. `patch` is None when GitHub shows no diff (binary, huge)."""

    path: str
    status: str  # added | modified | removed | renamed | copied | changed | unchanged
    patch: str | None
    additions: int
    deletions: int
    sha: str | None


@dataclass(frozen=True)
class PullFiles:
    head_sha: str
    files: list[PullFile]
    html_url: str


@dataclass(frozen=True)
class FileContent:
    """A file at a ref: `text` is None when it is not there (`missing`), a directory, or not text."""

    path: str
    text: str | None
    size: int | None
    problem: str | None = None  # "missing" | "directory" | "too_large" | "binary"


@dataclass(frozen=True)
class TreeFile:
    """A file of a repository's tree at a ref (for a review of the whole repository)."""

    path: str
    size: int | None


@dataclass(frozen=True)
class ReviewComment:
    """An inline comment on a line of the pull request's new version (`side: RIGHT`)."""

    path: str
    line: int
    body: str


def is_repository_path(path: str) -> bool:
    """A path inside a repository as git writes it: `/`-separated names, none empty, `.` or `..`.

    PyGithub puts the path into the URL (`/repos/{owner}/{name}/contents/{path}`) and the HTTP stack
    resolves dot segments, so `../../../other/secret/contents/x` would read another repository, and more
    `..` any endpoint of the API host, with the user's token."""
    return all(segment not in {"", ".", ".."} for segment in path.split("/"))


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
                for pull in islice(pulls, MAX_PULLS)
            ]

        return await _call("list_open_pulls", fetch)

    async def get_pull_files(self, full_name: str, number: int, *, token: str | None) -> PullFiles:
        """The pull request's head commit and changed files with their patches (at most `MAX_PULL_FILES`)."""

        def fetch() -> PullFiles:
            pull = self._pull(full_name, number, token)
            files = [
                PullFile(
                    path=item.filename,
                    status=item.status,
                    patch=item.patch,
                    additions=item.additions or 0,
                    deletions=item.deletions or 0,
                    sha=item.sha,
                )
                for item in islice(pull.get_files(), MAX_PULL_FILES)
            ]
            return PullFiles(head_sha=pull.head.sha, files=files, html_url=pull.html_url)

        return await _call("get_pull_files", fetch, not_found=PullRequestNotFound)

    async def get_file(self, full_name: str, path: str, ref: str, *, token: str | None, max_bytes: int) -> FileContent:
        """`path` at `ref` as text; a missing path, a directory, a binary or an oversized file is reported
        in `problem` instead of raising, so one bad path does not end a review of many."""

        if not is_repository_path(path):  # it would leave the repository (is_repository_path)
            return FileContent(path=path, text=None, size=None, problem="missing")

        def fetch() -> FileContent:
            repo = self._github(token, lazy=True).get_repo(full_name)
            try:
                found = repo.get_contents(path, ref=ref)
            except UnknownObjectException:
                return FileContent(path=path, text=None, size=None, problem="missing")
            if isinstance(found, list) or found.type != "file":
                return FileContent(path=path, text=None, size=None, problem="directory")
            size = found.size
            # Past 1 MB the contents API sends no content (`encoding: none`): as good as too large.
            if (size is not None and size > max_bytes) or found.encoding != "base64":
                return FileContent(path=path, text=None, size=size, problem="too_large")
            return _text_file(path, found.decoded_content, size)

        return await _call("get_file", fetch)

    async def list_files(self, full_name: str, ref: str, *, token: str | None) -> list[TreeFile]:
        """Every file (blob) of the repository at `ref` (a branch, tag or commit), from its recursive tree;
        GitHub caps a huge tree, which is then reviewed as far as it was listed."""

        def fetch() -> list[TreeFile]:
            repo = self._github(token, lazy=True).get_repo(full_name)
            # The ref goes in a query parameter (`?sha=`): a branch like `feature/x` cannot be a path segment.
            commits = repo.get_commits(sha=ref)
            head = next(iter(commits), None)
            if head is None:
                raise UnknownObjectException(404, {"message": "No commit found"}, None)
            tree = repo.get_git_tree(head.commit.tree.sha, recursive=True)
            return [TreeFile(path=item.path, size=item.size) for item in tree.tree if item.type == "blob"]

        return await _call("list_files", fetch)

    async def publish_review(
        self, full_name: str, number: int, *, token: str, body: str, comments: list[ReviewComment]
    ) -> str:
        """Post a `COMMENT` review (never an approval or a request for changes: the tutor advises) with
        inline comments on lines of the pull request's current diff; the review's html_url."""

        def post() -> str:
            pull = self._pull(full_name, number, token)
            review = pull.create_review(
                body=body,
                event="COMMENT",
                comments=[
                    {"path": comment.path, "line": comment.line, "side": "RIGHT", "body": comment.body}
                    for comment in comments
                ],
            )
            return review.html_url or pull.html_url

        return await _call("publish_review", post, not_found=PullRequestNotFound)

    def _pull(self, full_name: str, number: int, token: str | None) -> PullRequest:
        return self._github(token, lazy=True).get_repo(full_name).get_pull(number)


def _text_file(path: str, data: bytes, size: int | None) -> FileContent:
    if b"\x00" in data[:8192]:
        return FileContent(path=path, text=None, size=size, problem="binary")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return FileContent(path=path, text=None, size=size, problem="binary")
    return FileContent(path=path, text=text, size=size if size is not None else len(data))


async def _call(operation: str, func: Callable[[], T], *, not_found: type[GitHubNotFound] = GitHubNotFound) -> T:
    try:
        return await asyncio.to_thread(func)
    except UnknownObjectException as error:
        raise not_found() from error
    except BadCredentialsException as error:
        log.warning("github.token_rejected", operation=operation)
        raise GitHubTokenRejected() from error
    except (GithubException, requests.RequestException) as error:
        status = getattr(error, "status", None)
        log.warning("github.call_failed", operation=operation, status=status, error_type=type(error).__name__)
        raise GitHubUnavailable() from error


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
