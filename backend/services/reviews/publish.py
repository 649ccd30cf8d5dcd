"""Publishing a completed review on its pull request, as the user who asked for it.

GitHub takes inline comments only on lines of the pull request's current diff; the others (and those
without a line) go into the review's body, so nothing the review found is lost.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.errors import Conflict
from backend.integrations.github import GitHubClient
from backend.integrations.github import ReviewComment as InlineComment
from backend.models import Repository, User
from backend.services import github as github_service
from backend.services.reviews.selection import added_lines

MAX_PUBLISHED_BODY_CHARS = 60_000  # GitHub refuses review bodies past 65,536 characters

log = structlog.get_logger(__name__)


class ReviewNotPublishable(Conflict):
    detail = "This review cannot be published."


async def publish(session: AsyncSession, settings: Settings, github: GitHubClient, user: User, review_id: int) -> str:
    """Post a completed review on its pull request as the user: comments on lines of the current diff
    inline, the others in the review's body. The html_url of the posted review."""
    review = await github_service.get_review(session, user, review_id)
    if review.pull_number is None:
        raise ReviewNotPublishable("This review is of files at a ref, not of a pull request: nothing to post it on.")
    if review.status != "completed":
        raise ReviewNotPublishable(f"Only a completed review can be published; this one is {review.status}.")
    repository = await session.get(Repository, review.repository_id) if review.repository_id else None
    if repository is None:
        raise ReviewNotPublishable("The repository of this review is no longer linked.")
    token = await github_service.user_token(session, settings, user)
    if token is None:
        raise ReviewNotPublishable("Connect GitHub (repository access) to publish reviews on pull requests.")
    full_name, number = repository.full_name, review.pull_number
    summary, score, comments, model = review.summary or "", review.score, list(review.comments), review.model
    await session.commit()  # nothing to write; no transaction across the GitHub calls

    pull = await github.get_pull_files(full_name, number, token=token)
    commentable = {item.path: added_lines(item.patch) for item in pull.files}
    inline, general = [], []
    for comment in comments:
        line = comment.get("line")
        if line is not None and line in commentable.get(comment["path"], set()):
            inline.append(InlineComment(path=comment["path"], line=line, body=_comment_text(comment)))
        else:
            general.append(comment)
    body = _published_body(summary, score, model, general)
    html_url = await github.publish_review(full_name, number, token=token, body=body, comments=inline)
    log.info("review.published", review_id=review_id, inline=len(inline), in_body=len(general))
    return html_url


SEVERITY_MARK = {"error": "🔴 error", "warning": "🟠 warning", "info": "🔵 info"}


def _comment_text(comment: dict[str, Any]) -> str:
    text = f"**{SEVERITY_MARK.get(comment['severity'], comment['severity'])}** ({comment['category']}): "
    text += comment["message"]
    if comment.get("suggestion"):
        text += f"\n\n💡 {comment['suggestion']}"
    return text


def _published_body(summary: str, score: int | None, model: str | None, general: list[dict[str, Any]]) -> str:
    lines = ["## CodeMentor review", "", summary, ""]
    if score is not None:
        lines.append(f"**Score:** {score}/100")
    if general:
        lines += ["", "### Other comments", ""]
        for comment in general:
            where = f"`{comment['path']}`" + (f" line {comment['line']}" if comment.get("line") else "")
            lines.append(f"- {where}: {_comment_text(comment)}")
    lines += ["", f"<sub>Reviewed by CodeMentor ({model or 'unknown model'}).</sub>"]
    return "\n".join(lines)[:MAX_PUBLISHED_BODY_CHARS]
