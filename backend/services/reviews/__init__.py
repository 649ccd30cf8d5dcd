"""The code review job (kind "review", payload `{review_id}`; `run_review` and `mark_failed` are registered
where the app is wired, backend/app.py) and publishing a review on its pull request.

The job fetches the pull request's changed files, or the chosen paths at a ref, or (neither given) the
whole repository's code at a ref, most relevant first; keeps at most `MAX_FILES` and skips what is not
worth reviewing (deleted, vendored, generated, binary, oversized), then asks the LLM for a structured
review written for the learner's level and known weak spots. The static review stands in when no LLM
is configured, or when the model is down or answers nonsense twice (`model: "static"`, the summary says
why). A review never dead-ends on its own content: with nothing to read it completes, its summary saying
why; only GitHub failures (and a crashed job) end it `failed`, and its job row then ends `failed` too.
The review row tells the user where it is (`running` with live `progress`, then `completed` or `failed`
with a reason, `completed_at` set either way): it never stays `running` once its job has ended, because
the job framework calls `mark_failed` for any job it ends `failed`, also one abandoned after restarts.

No transaction is held across a GitHub or LLM call (on SQLite one would hold the database's write lock
for the whole review): each step that writes opens its own short session.

`selection` decides what is reviewed, `llm` asks the model, `static` is the offline review, `publish`
posts a finished review on GitHub.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import structlog
from sqlalchemy import update

from backend import jobs
from backend.db import utcnow
from backend.integrations.github import (
    FileContent,
    GitHubClient,
    GitHubNotFound,
    GitHubTokenRejected,
    GitHubUnavailable,
)
from backend.jobs import JobContext, SessionFactory
from backend.models import Repository, Review, User
from backend.services import github as github_service
from backend.services import learner as learner_service
from backend.services import progress as progress_service
from backend.services.reviews import static
from backend.services.reviews.llm import LLMReviewUnavailable, ask_llm
from backend.services.reviews.publish import ReviewNotPublishable, publish
from backend.services.reviews.selection import (
    MAX_FILE_BYTES,
    MAX_FILES,
    SKIP_REASONS,
    Collected,
    ReviewFailed,
    Target,
    added_lines,
    triage_paths,
    triage_pull_files,
    triage_repository,
)
from backend.services.reviews.static import SourceFile

__all__ = ["MAX_FILES", "SKIP_REASONS", "ReviewFailed", "ReviewNotPublishable", "added_lines", "publish", "run_review"]

JOB_KIND = "review"
INTERRUPTED = "The review was interrupted too many times (its worker stopped); ask for a new one."
CRASHED = "The review stopped on an unexpected error; ask for a new one."

log = structlog.get_logger(__name__)


async def mark_failed(context: JobContext, payload: dict[str, Any], reason: str) -> None:
    """The job framework ended this review's job `failed`: the review follows, with a reason for people."""
    text = INTERRUPTED if reason == jobs.ABANDONED_ERROR else CRASHED
    await _fail(context.session_factory, int(payload["review_id"]), text)


async def run_review(context: JobContext, payload: dict[str, Any]) -> None:
    """Every review ends `completed` (the LLM's, else the static one; with nothing reviewable, a summary
    saying why) unless GitHub itself fails it; the job row then ends `failed` too."""
    review_id = int(payload["review_id"])
    target = await _start(context, review_id)
    if target is None:
        return
    github = GitHubClient(context.settings)
    try:
        collected = await _collect(context.session_factory, github, target)
        if not collected.files:
            await _complete(
                context.session_factory, review_id, summary=_nothing_reviewable(collected), score=None,
                comments=[], files_reviewed=0, files_skipped=collected.skipped, model=static.MODEL,
            )  # fmt: skip
            return
        summary, score, comments, model = await _review(context, target, collected)
    except ReviewFailed as failure:
        reason = failure.reason
    except GitHubNotFound as error:
        reason = f"{error.detail} Check the pull request number or the ref."
    except GitHubTokenRejected as error:
        reason = error.detail
    except GitHubUnavailable:
        reason = "GitHub could not be reached; ask for the review again later."
    else:
        await _complete(
            context.session_factory,
            review_id,
            summary=summary,
            score=score,
            comments=comments,
            files_reviewed=len(collected.files),
            files_skipped=collected.skipped,
            model=model,
        )
        return
    await _fail(context.session_factory, review_id, reason)
    raise jobs.JobFailed(reason)  # the job row follows its review


async def _review(
    context: JobContext, target: Target, collected: Collected
) -> tuple[str, int, list[dict[str, Any]], str]:
    """The LLM's review; the static one offline, or when the model is down or answers nonsense twice."""
    why = "no AI model is configured"
    if context.settings.llm_provider != "offline":
        try:
            return await ask_llm(context, target, collected)
        except LLMReviewUnavailable as unavailable:
            log.warning("review.static_fallback", review_id=target.review_id, why=unavailable.why)
            why = unavailable.why
    outcome = await asyncio.to_thread(
        static.review,
        collected.files,
        skill_level=target.skill_level,
        focus_areas=target.focus_areas,
        changed_lines=collected.changed_lines if target.pull_number is not None else None,
        why=why,
    )
    return outcome.summary, outcome.score, outcome.comments, static.MODEL


async def _start(context: JobContext, review_id: int) -> Target | None:
    """Mark the review `running` and read what the job needs; None when there is nothing (left) to do."""
    async with context.session_factory() as session:
        review = await session.get(Review, review_id)
        if review is None or review.status not in ("queued", "running"):
            await session.commit()
            return None  # deleted with its user, or already ended (a resumed duplicate)
        repository = await session.get(Repository, review.repository_id) if review.repository_id else None
        user = await session.get_one(User, review.user_id)  # a disabled account's token is not used
        if repository is None or not user.is_active:
            reason = (
                "The repository was unlinked before the review ran."
                if repository is None
                else "The account was disabled before the review ran."
            )
            review.status, review.error, review.completed_at = "failed", reason, utcnow()
            await session.commit()
            raise jobs.JobFailed(reason)
        token = await github_service.user_token(session, context.settings, user)
        total = 0 if review.paths is None else len(review.paths)
        review.status, review.started_at, review.error = "running", utcnow(), None
        review.progress = {"files_done": 0, "files_total": total}
        target = Target(
            review_id=review.id,
            user_id=user.id,
            full_name=repository.full_name,
            token=token,
            pull_number=review.pull_number,
            ref=review.ref,
            paths=list(review.paths or []),
            focus_areas=list(review.focus_areas or []),
            skill_level=user.skill_level,
            weaknesses=tuple(await learner_service.weakness_hints(session, user.id)),
            is_whole_repository=review.pull_number is None and review.paths is None,
        )
        await session.commit()
    log.info("review.started", review_id=review_id, by_pull=target.pull_number is not None)
    return target


async def _collect(session_factory: SessionFactory, github: GitHubClient, target: Target) -> Collected:
    collected = Collected()
    if target.pull_number is not None:
        pull = await github.get_pull_files(target.full_name, target.pull_number, token=target.token)
        kept, skipped = triage_pull_files(pull.files)
        ref = pull.head_sha
        paths = [item.path for item in kept]
        collected.changed_lines = {item.path: added_lines(item.patch) for item in kept}
    elif target.is_whole_repository:
        ref = target.ref or "HEAD"
        paths, skipped = triage_repository(await github.list_files(target.full_name, ref, token=target.token))
    else:
        paths, skipped = triage_paths(target.paths)
        ref = target.ref or "HEAD"
    for path, reason in skipped:
        collected.skip(path, reason)
    await _set_progress(session_factory, target.review_id, 0, len(paths))
    for done, path in enumerate(paths, start=1):
        content = await github.get_file(target.full_name, path, ref, token=target.token, max_bytes=MAX_FILE_BYTES)
        _keep(collected, content)
        await _set_progress(session_factory, target.review_id, done, len(paths))
    return collected


def _keep(collected: Collected, content: FileContent) -> None:
    if content.text is None:
        collected.skip(content.path, content.problem or "missing")
    else:
        collected.files.append(SourceFile(path=content.path, text=content.text))


def _nothing_reviewable(collected: Collected) -> str:
    """The summary of a review with no file to read: which reasons kept every file out."""
    if not collected.skipped:
        return "There were no files to review: nothing changed, or the repository has no files at this ref."
    reasons = Counter(item["reason"] for item in collected.skipped)
    listed = "; ".join(f"{count} {reason}" for reason, count in reasons.most_common())
    total = len(collected.skipped) + collected.skipped_unlisted
    return (
        f"Nothing was reviewed: all {total} file{'s' if total != 1 else ''} had to be skipped ({listed}). "
        "files_skipped lists each one with its reason; ask for a review of other files or another ref."
    )


async def _set_progress(session_factory: SessionFactory, review_id: int, done: int, total: int) -> None:
    async with session_factory() as session:
        await session.execute(
            update(Review)
            .where(Review.id == review_id, Review.status == "running")
            .values(progress={"files_done": done, "files_total": total})
        )
        await session.commit()


async def _fail(session_factory: SessionFactory, review_id: int, reason: str) -> None:
    async with session_factory() as session:
        await session.execute(
            update(Review)
            .where(Review.id == review_id, Review.status.in_(("queued", "running")))
            .values(status="failed", error=reason, completed_at=utcnow())
        )
        await session.commit()
    log.info("review.failed", review_id=review_id)


async def _complete(
    session_factory: SessionFactory,
    review_id: int,
    *,
    summary: str,
    score: int | None,
    comments: list[dict[str, Any]],
    files_reviewed: int,
    files_skipped: list[dict[str, str]],
    model: str,
) -> None:
    """Store the result and count it for the achievements, in one transaction: the status change from
    `running` is what makes it count once, even if a resumed duplicate finishes too."""
    now = utcnow()
    async with session_factory() as session:
        user_id = await session.scalar(
            update(Review)
            .where(Review.id == review_id, Review.status == "running")
            .values(
                status="completed",
                summary=summary,
                score=score,
                comments=comments,
                files_reviewed=files_reviewed,
                files_skipped=files_skipped,
                progress={"files_done": files_reviewed, "files_total": files_reviewed},
                model=model,
                error=None,
                completed_at=now,
            )
            .returning(Review.user_id)
        )
        if user_id is not None and files_reviewed:  # an empty review earns no review achievements
            await progress_service.record_review(session, await session.get_one(User, user_id), at=now)
        await session.commit()
    log.info("review.completed", review_id=review_id, model=model, comments=len(comments), files=files_reviewed)
