"""Linked GitHub repositories, code reviews, background jobs and webhook deliveries seen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base, utcnow

REVIEW_STATUSES = ("queued", "running", "completed", "failed")
JOB_STATUSES = ("queued", "running", "completed", "failed")


class Repository(Base):
    """A GitHub repository a user linked; its metadata is a snapshot taken when linking."""

    __tablename__ = "repositories"
    __table_args__ = (UniqueConstraint("user_id", "full_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    github_id: Mapped[int | None] = mapped_column(Integer)
    full_name: Mapped[str] = mapped_column(String(200), index=True)
    url: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(100))
    default_branch: Mapped[str] = mapped_column(String(255), default="main")
    private: Mapped[bool] = mapped_column(default=False, server_default=false())
    stars: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    auto_review: Mapped[bool] = mapped_column(default=False, server_default=false())
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_review_at: Mapped[datetime | None]


class Review(Base):
    """A code review of a pull request or of paths at a ref; kept when its repository is unlinked."""

    __tablename__ = "reviews"
    __table_args__ = (CheckConstraint("status IN ('queued', 'running', 'completed', 'failed')", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    repository_id: Mapped[int | None] = mapped_column(ForeignKey("repositories.id", ondelete="SET NULL"), index=True)
    pull_number: Mapped[int | None]
    ref: Mapped[str | None] = mapped_column(String(255))
    paths: Mapped[list[str] | None] = mapped_column(JSON)
    focus_areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="queued", server_default="queued")
    summary: Mapped[str | None] = mapped_column(Text)
    score: Mapped[int | None]
    comments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    files_reviewed: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    files_skipped: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class Job(Base):
    """A unit of background work: a row first, so a restart resumes what was queued."""

    __tablename__ = "jobs"
    __table_args__ = (CheckConstraint("status IN ('queued', 'running', 'completed', 'failed')", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="queued", server_default="queued", index=True)
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    run_after: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """A GitHub webhook delivery already handled, so a replay is ignored. `delivery_id` is `sha256:` and the
    hex digest of the signed body (what the signature covers; the `X-GitHub-Delivery` header is not signed)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(100), unique=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
