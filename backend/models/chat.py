from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db import Base, TimestampedMixin, utcnow

CONTEXT_TYPES = ("general", "exercise")
MESSAGE_ROLES = ("user", "assistant")
MESSAGE_STATUSES = ("complete", "partial", "failed")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Conversation(TimestampedMixin, Base):
    __tablename__ = "conversations"
    __table_args__ = (CheckConstraint(_one_of("context_type", CONTEXT_TYPES), name="context_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str | None] = mapped_column(String(200))  # None until the first message names it
    context_type: Mapped[str] = mapped_column(String(20), default="general", server_default="general")
    exercise_id: Mapped[int | None] = mapped_column(ForeignKey("exercises.id", ondelete="SET NULL"), index=True)
    # Started from a submission ("why did this fail?"): the tutor discusses that one, not the latest.
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id", ondelete="SET NULL"), index=True)
    message_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    last_message_at: Mapped[datetime | None]

    messages: Mapped[list[Message]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        back_populates="conversation",
        order_by="Message.id",  # oldest first, when loaded (the account export)
    )


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(_one_of("role", MESSAGE_ROLES), name="role"),
        CheckConstraint(_one_of("status", MESSAGE_STATUSES), name="status"),
        # A conversation's messages newest first (the history window, paging by before_id) straight off
        # the index, without sorting every message of a long conversation; it also serves the foreign key.
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="complete", server_default="complete")
    model: Mapped[str | None] = mapped_column(String(100))  # assistant messages: who answered
    prompt_tokens: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    completion_tokens: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    tokens_used: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    latency_ms: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    conversation: Mapped[Conversation] = relationship(lazy="raise", back_populates="messages")


class LLMUsage(Base):
    """Tokens one user spent on one UTC day: the truth behind the daily budget."""

    __tablename__ = "llm_usage"
    __table_args__ = (UniqueConstraint("user_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[date]
    requests: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    prompt_tokens: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    completion_tokens: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
