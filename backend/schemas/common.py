"""Shapes shared by every domain: the error body and the list page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")

MAX_ID = 2**31 - 1  # ids are 32-bit signed integers in every database we run on
# An id sent in a body or query: beyond MAX_ID it cannot exist, and the database driver could not bind it.
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


# Every `code` a problem can carry (docs/API.md lists what each means). A test scans the code base for codes
# missing here, so a new error cannot reach clients undocumented.
ErrorCode = Literal[
    "bad_request",
    "invalid_json",
    "invalid_password",
    "token_invalid",
    "token_expired",
    "unauthorized",
    "token_reused",
    "invalid_credentials",
    "csrf_failed",
    "forbidden",
    "account_disabled",
    "not_found",
    "method_not_allowed",
    "conflict",
    "email_taken",
    "already_completed",
    "payload_too_large",
    "unsupported_media_type",
    "validation_error",
    "rate_limited",
    "quota_exceeded",
    "account_locked",
    "internal_error",
    "llm_error",
    "upstream_error",
    "service_unavailable",
    "llm_not_configured",
    "sandbox_unavailable",
    "llm_timeout",
    "upstream_timeout",
]


class FieldError(BaseModel):
    field: str = Field(description="Dotted path inside the body or query, e.g. `tests.0.name`.")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: ErrorCode = Field(description="Stable machine-readable error code, e.g. `not_found`.")
    request_id: str | None = None
    errors: list[FieldError] | None = Field(None, description="Only for `validation_error`.")


class Page(BaseModel, Generic[T]):
    """A page of a list (`?limit&offset`). Subclass it per item type: each becomes a named schema."""

    items: list[T]
    total: int = Field(description="Items in the whole list.")
    limit: int
    offset: int

    @classmethod
    def of(cls, items: Sequence[Any], total: int, query: PageQuery) -> Self:
        """The page `query` asked for (its limit and offset) holding `items` of `total`; each item (an ORM
        object, a row, a dict, a dataclass) is validated into the item schema."""
        page = {"items": items, "total": total, "limit": query.limit, "offset": query.offset}
        return cls.model_validate(page, from_attributes=True)


class PageQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=MAX_ID)
