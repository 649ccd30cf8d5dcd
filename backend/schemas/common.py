"""Shapes shared by every domain: the error body and the list page."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")

MAX_ID = 2**31 - 1  # ids are 32-bit signed integers in every database we run on
# An id sent in a body or query: beyond MAX_ID it cannot exist, and the database driver could not bind it.
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class FieldError(BaseModel):
    field: str = Field(description="Dotted path inside the body or query, e.g. `tests.0.name`.")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable error code, e.g. `not_found`.")
    request_id: str | None = None
    errors: list[FieldError] | None = Field(None, description="Only for `validation_error`.")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class PageQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=MAX_ID)
