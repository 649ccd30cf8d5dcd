from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from backend.integrations.github import is_repository_path
from backend.models import OAuthAccount
from backend.schemas.common import MAX_ID, Page

MAX_REVIEW_PATHS = 100
# github.com/{owner}/{repo}[.git] and nothing else: no query, fragment, extra segments or other hosts.
REPOSITORY_URL = re.compile(
    r"https://github\.com/(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/(?P<name>[A-Za-z0-9._-]{1,100}?)(?:\.git)?"
)
# The same rule as one ECMAScript pattern for the OpenAPI document: "." and ".." are not repository names.
REPOSITORY_URL_PATTERN = (
    r"^https://github\.com/[A-Za-z0-9][A-Za-z0-9-]{0,38}/(?!\.\.?(?:\.git)?$)[A-Za-z0-9._-]{1,100}?(?:\.git)?$"
)

FocusArea = Literal["security", "performance", "best_practices", "readability", "testing"]
ReviewStatus = Literal["queued", "running", "completed", "failed"]
Severity = Literal["info", "warning", "error"]


def repository_full_name(url: str) -> str:
    """`owner/name` of a `https://github.com/{owner}/{repo}[.git]` URL; ValueError for anything else."""
    match = REPOSITORY_URL.fullmatch(url)
    if match is None or match["name"] in {".", ".."}:
        raise ValueError("Must be https://github.com/{owner}/{repo}, optionally ending in .git")
    return f"{match['owner']}/{match['name']}"


def _repository_url(value: str) -> str:
    repository_full_name(value)
    return value


class GitHubConnection(BaseModel):
    connected: bool = Field(description="True when a token with the `repo` scope is stored.")
    login: str | None
    scopes: list[str]
    connected_at: datetime | None

    @classmethod
    def of(cls, account: OAuthAccount | None) -> GitHubConnection:
        """The connection of a GitHub link connected for repositories; None: not connected."""
        if account is None:
            return cls(connected=False, login=None, scopes=[], connected_at=None)
        scopes = (account.scopes or "").split()
        return cls(connected=True, login=account.login, scopes=scopes, connected_at=account.updated_at)


class RepositoryCreate(BaseModel):
    repository_url: Annotated[str, Field(max_length=300), AfterValidator(_repository_url)] = Field(
        examples=["https://github.com/octocat/hello-world"],
        # What the validator enforces, for clients and fuzzers (pydantic's own regex engine has no lookahead).
        json_schema_extra={"pattern": REPOSITORY_URL_PATTERN},
    )

    @property
    def full_name(self) -> str:
        """The repository's `owner/name`."""
        return repository_full_name(self.repository_url)


class RepositoryUpdate(BaseModel):
    auto_review: bool


class RepositoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    full_name: str
    url: str
    description: str | None
    language: str | None
    default_branch: str
    private: bool
    stars: int
    auto_review: bool
    linked_at: datetime
    last_review_at: datetime | None


class RepositoryList(BaseModel):
    items: list[RepositoryRead]


class PullRead(BaseModel):
    model_config = ConfigDict(title="PullRequest")

    number: int
    title: str
    author: str | None
    head_ref: str
    updated_at: datetime | None
    html_url: str


class PullList(BaseModel):
    model_config = ConfigDict(title="PullRequestList")

    items: list[PullRead]


def _repository_path(value: str) -> str:
    if not is_repository_path(value):
        raise ValueError("A path inside the repository: no empty, '.' or '..' segments, no leading '/'")
    return value


# The same rule as one ECMAScript pattern for the OpenAPI document (pydantic's regex engine has no lookahead).
REPOSITORY_PATH_PATTERN = r"^(?:(?!\.\.?/)[^/]+/)*(?!\.\.?$)[^/]+$"
ReviewPath = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500),
    AfterValidator(_repository_path),
    Field(json_schema_extra={"pattern": REPOSITORY_PATH_PATTERN}),
]


class ReviewCreate(BaseModel):
    pull_number: int | None = Field(None, ge=1, le=MAX_ID, description="Review this pull request's changes…")
    paths: list[ReviewPath] | None = Field(
        None,
        min_length=1,
        max_length=MAX_REVIEW_PATHS,
        description="…or these files at `ref`; with neither, the whole repository at `ref`.",
    )
    ref: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)] | None = Field(
        None, description="A branch, tag or commit (not with `pull_number`); default: the default branch."
    )
    focus_areas: list[FocusArea] = Field(default_factory=list, max_length=5)


class ReviewComment(BaseModel):
    path: str
    line: int | None
    severity: Severity
    category: str
    message: str
    suggestion: str | None


class SkippedFile(BaseModel):
    path: str
    reason: str


class ReviewProgress(BaseModel):
    files_done: int
    files_total: int


class ReviewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    repository_id: int | None = Field(description="Null once the repository is unlinked (the review is kept).")
    pull_number: int | None
    ref: str | None
    status: ReviewStatus
    summary: str | None
    score: int | None
    comments: list[ReviewComment]
    files_reviewed: int
    files_skipped: list[SkippedFile]
    progress: ReviewProgress | None
    model: str | None
    error: str | None
    created_at: datetime
    completed_at: datetime | None


class ReviewPage(Page[ReviewRead]):
    pass


class ReviewPublished(BaseModel):
    html_url: str = Field(description="The review as posted on the pull request.")


class WebhookAccepted(BaseModel):
    queued: int | None = Field(description="The id of the review queued by this event, if any.")
