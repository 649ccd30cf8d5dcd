"""Conversations: create, read, rename, delete (their lists are in reads.py); someone else's is a 404."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.errors import NotFound, ValidationFailed
from backend.models import User
from backend.models.chat import Conversation
from backend.services import exercises as exercises_service
from backend.services import tutor_context
from backend.text import strip_html

TITLE_WORDS = 8
TITLE_CHARS = 80


class ConversationNotFound(NotFound):
    detail = "Conversation not found."


class SubmissionNotFound(NotFound):
    detail = "Submission not found."


def title_from(text: str) -> str:
    """A title from the first words of the first message (backticks and fences dropped), as plain text
    like a title the user types (the message itself is stored verbatim: it carries code)."""
    try:
        text = strip_html(text)
    except ValueError:
        text = ""
    words = text.replace("`", " ").split()
    title = " ".join(words[:TITLE_WORDS])
    if len(words) > TITLE_WORDS:
        title += "…"
    return title[:TITLE_CHARS] or "New conversation"


async def create_conversation(
    session: AsyncSession, user: User, *, title: str | None, exercise_id: int | None, submission_id: int | None = None
) -> Conversation:
    """A general conversation, or one about an exercise the user may see, or about one of their
    submissions (its exercise implied); 404 for anyone else's, 422 when the two disagree."""
    if submission_id is not None:
        submission = await tutor_context.submission_for_conversation(session, user, submission_id)
        if submission is None:
            raise SubmissionNotFound()
        if exercise_id is not None and exercise_id != submission.exercise_id:
            raise ValidationFailed(
                "exercise_id is not the exercise of that submission.",
                errors=[{"field": "exercise_id", "message": "Must match the submission's exercise (or be omitted)."}],
            )
        exercise_id = submission.exercise_id
    if exercise_id is not None:
        await exercises_service.get_visible(session, user, exercise_id)
    conversation = Conversation(
        user_id=user.id,
        title=title,
        exercise_id=exercise_id,
        submission_id=submission_id,
        context_type="exercise" if exercise_id is not None else "general",
    )
    session.add(conversation)
    await session.flush()
    return conversation


async def get_owned(session: AsyncSession, user: User, conversation_id: int) -> Conversation:
    """A conversation of `user`; someone else's is indistinguishable from a missing one."""
    conversation = await session.scalar(
        select(Conversation).where(Conversation.id == conversation_id, Conversation.user_id == user.id)
    )
    if conversation is None:
        raise ConversationNotFound()
    return conversation


async def rename_conversation(session: AsyncSession, user: User, conversation_id: int, title: str) -> Conversation:
    conversation = await get_owned(session, user, conversation_id)
    conversation.title = title
    await session.flush()
    return conversation


async def delete_conversation(session: AsyncSession, user: User, conversation_id: int) -> None:
    conversation = await get_owned(session, user, conversation_id)
    # The messages go with it (ON DELETE CASCADE), without loading them.
    await session.execute(delete(Conversation).where(Conversation.id == conversation.id))
