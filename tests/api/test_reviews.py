"""Code reviews end to end, on both stacks: the review job against the fake GitHub REST API and the fake
OpenAI server (or the static review offline), publishing, webhooks, restarts and the arq worker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as redis
from arq.worker import Worker
from pydantic import SecretStr
from quart import Quart
from quart.testing import QuartClient
from sqlalchemy import select

from backend import jobs
from backend.app import register_job_kinds
from backend.config import Settings
from backend.db import utcnow
from backend.jobs import JobContext
from backend.jobs.arq_worker import QUEUE_NAME, message_id, worker_options
from backend.models import Job, Repository, Review
from backend.services.achievements import seed_achievements
from backend.services.llm_gateway import BudgetedLLM
from backend.services.reviews import SKIP_REASONS
from tests.api.test_github import (
    GITHUB,
    WEBHOOK_SECRET,
    deliver,
    link,
    new_user,
    pull_request_event,
    request_review,
    store_github_grant,
)
from tests.fakes.github_api import FakeGitHubAPI
from tests.fakes.llm_servers import FakeOpenAI

GOOD_CODE = b'''def add(a, b):
    """Add two numbers."""
    return a + b
'''
BUGGY_CODE = b"""import os


def greet(name):
    return "Hello " + nme
"""
SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
LONG_FUNCTION = (
    b"def long_one():\n" + b"".join(f"    value_{i} = {i}\n".encode() for i in range(60)) + b"    return 0\n"
)
SECRET_FILE = f'TOKEN = "{SECRET}"\n'.encode()
# a pull request that changes only line 5 of BUGGY_CODE
ONE_LINE_PATCH = '@@ -5,1 +5,1 @@\n-    return "Hello " + name\n+    return "Hello " + nme'

AppFactory = Callable[..., Awaitable[Quart]]


@pytest.fixture
async def review_app(make_app: AppFactory, github_api: FakeGitHubAPI) -> AppFactory:
    """Started apps on this test's stack, pointed at the fake GitHub API (`llm=` a fake LLM server)."""
    github_api.reset()

    async def build(llm: FakeOpenAI | None = None, **overrides: object) -> Quart:
        values: dict[str, object] = {
            "github_api_url": github_api.base_url,
            "github_webhook_secret": SecretStr(WEBHOOK_SECRET),
            **overrides,
        }
        if llm is not None:
            llm.reset()
            values.update(llm_provider="openai", llm_base_url=llm.sdk_base_url, llm_api_key=SecretStr(llm.api_key))
        return await make_app(**values)

    return build


async def wait_for_review(client: QuartClient, headers: dict[str, str], review_id: int, seconds: float = 30) -> Any:
    """Poll `GET /reviews/{id}` until it ends (a bounded wait, not a timing assertion)."""
    body: Any = None
    for _ in range(int(seconds / 0.05)):
        body = await (await client.get(f"{GITHUB}/reviews/{review_id}", headers=headers)).get_json()
        if body["status"] in ("completed", "failed"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"review {review_id} still {body and body['status']}")


def llm_review(*comments: dict[str, Any], summary: str = "Clear and small change.", score: Any = 81) -> str:
    return json.dumps({"summary": summary, "score": score, "comments": list(comments)})


def comment(path: str, line: int | None, severity: str = "warning", **extra: Any) -> dict[str, Any]:
    return {
        "path": path,
        "line": line,
        "severity": severity,
        "category": extra.get("category", "bug"),
        "message": extra.get("message", f"Look at {path}"),
        "suggestion": extra.get("suggestion", "Fix it"),
    }


async def seed(app: Quart) -> None:
    async with app.extensions["db_session_factory"]() as session:
        await seed_achievements(session)
        await session.commit()


# --- the LLM review --------------------------------------------------------------------------------------


async def test_pull_request_review_through_llm_completes_with_comments_and_skipped_files(
    review_app: AppFactory, github_api: FakeGitHubAPI, openai_server: FakeOpenAI
) -> None:
    app = await review_app(llm=openai_server)
    await seed(app)
    client = app.test_client()
    fake = github_api.add_repository("octo/hello")
    files = {
        "src/app.py": BUGGY_CODE,
        "src/util.py": GOOD_CODE,
        "package-lock.json": b"{}",
        "vendor/lib/thing.py": GOOD_CODE,
        "static/app.min.js": b"var a=1;",
        "docs/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
        "old.py": None,
    }
    github_api.add_pull(fake, 12, "Greeting", "ada", "greet", files)
    openai_server.reply = llm_review(
        comment("src/app.py", 5, "error", message="`nme` is not defined."),
        comment("src/util.py", 999, "info"),  # past the end: kept on the last line
        comment("src/not_in_the_review.py", 1),  # not a reviewed file: dropped
        {"path": "src/app.py", "message": "no severity"},  # malformed: dropped
        score=140,
    )
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")

    response = await request_review(client, headers, repository["id"], pull_number=12, focus_areas=["security"])
    assert response.status_code == 202
    review = await wait_for_review(client, headers, (await response.get_json())["id"])

    assert review["status"] == "completed", review["error"]
    assert review["summary"] == "Clear and small change." and review["score"] == 100
    assert [(c["path"], c["line"], c["severity"]) for c in review["comments"]] == [
        ("src/app.py", 5, "error"),
        ("src/util.py", 3, "info"),
    ]
    assert review["files_reviewed"] == 2
    assert {item["path"]: item["reason"] for item in review["files_skipped"]} == {
        "package-lock.json": SKIP_REASONS["generated"],
        "vendor/lib/thing.py": SKIP_REASONS["vendored"],
        "static/app.min.js": SKIP_REASONS["generated"],
        "docs/logo.png": SKIP_REASONS["binary"],
        "old.py": SKIP_REASONS["deleted"],
    }
    assert review["progress"] == {"files_done": 2, "files_total": 2}
    assert review["model"] == FakeOpenAI.model and review["completed_at"] is not None

    [sent] = openai_server.requests
    system, user_message = sent["messages"][0]["content"], sent["messages"][-1]["content"]
    assert "beginner" in system and "security" in system
    assert "### src/app.py" in user_message and '    5     return "Hello " + nme' in user_message
    assert "vendor/lib/thing.py" not in user_message

    achievements = await (await client.get("/api/v1/users/me/achievements", headers=headers)).get_json()
    first = next(item for item in achievements["items"] if item["slug"] == "first_review")
    assert first["unlocked"] is True


async def test_invalid_llm_json_twice_falls_back_to_the_static_review(
    review_app: AppFactory, github_api: FakeGitHubAPI, openai_server: FakeOpenAI
) -> None:
    app = await review_app(llm=openai_server)
    client = app.test_client()
    fake = github_api.add_repository("octo/hello")
    github_api.add_pull(fake, 3, "Change", "ada", "change", {"app.py": BUGGY_CODE})
    openai_server.reply = "Sure! Here is my review: the code looks fine."
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")

    queued = await (await request_review(client, headers, repository["id"], pull_number=3)).get_json()
    review = await wait_for_review(client, headers, queued["id"])
    assert review["status"] == "completed" and review["model"] == "static" and review["error"] is None
    assert "did not answer with a valid review" in review["summary"] and review["completed_at"] is not None
    assert any("nme" in c["message"] for c in review["comments"])  # the static review's own finding
    assert len(openai_server.requests) == 2
    assert await job_status(app, queued["id"]) == "completed"


async def test_review_past_the_daily_ai_budget_fails_without_asking_the_model(
    review_app: AppFactory, github_api: FakeGitHubAPI, openai_server: FakeOpenAI
) -> None:
    app = await review_app(llm=openai_server, llm_daily_token_budget=50)  # one review uses 42 + 17 tokens
    client = app.test_client()
    fake = github_api.add_repository("octo/hello")
    github_api.add_pull(fake, 3, "Change", "ada", "change", {"app.py": GOOD_CODE})
    openai_server.reply = llm_review()
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")

    first = await (await request_review(client, headers, repository["id"], pull_number=3)).get_json()
    assert (await wait_for_review(client, headers, first["id"]))["status"] == "completed"
    second = await (await request_review(client, headers, repository["id"], pull_number=3)).get_json()
    review = await wait_for_review(client, headers, second["id"])
    assert review["status"] == "failed" and "budget" in review["error"]
    assert len(openai_server.requests) == 1


async def test_review_of_a_missing_pull_request_fails_with_reason(
    review_app: AppFactory, github_api: FakeGitHubAPI
) -> None:
    app = await review_app()
    client = app.test_client()
    github_api.add_repository("octo/hello")
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")
    queued = await (await request_review(client, headers, repository["id"], pull_number=404)).get_json()
    review = await wait_for_review(client, headers, queued["id"])
    assert review["status"] == "failed" and "pull request" in review["error"]


async def test_review_with_a_revoked_github_token_fails_saying_to_connect_again(
    review_app: AppFactory, github_api: FakeGitHubAPI
) -> None:
    app = await review_app()
    client = app.test_client()
    fake = github_api.add_repository("octo/hello")
    github_api.add_pull(fake, 3, "Change", "ada", "change", {"app.py": GOOD_CODE})
    headers, user_id = await new_user(client)
    repository = await link(client, headers, "octo/hello")
    await store_github_grant(app, user_id, "gho_revoked", "repo")
    github_api.revoked_tokens.add("gho_revoked")
    queued = await (await request_review(client, headers, repository["id"], pull_number=3)).get_json()
    review = await wait_for_review(client, headers, queued["id"])
    assert review["status"] == "failed" and "connect GitHub again" in review["error"]


# --- the static review (no LLM configured) ------------------------------------------------------------------


async def test_offline_review_of_paths_at_ref_finds_pyflakes_error_long_function_and_secret(
    review_app: AppFactory, github_api: FakeGitHubAPI
) -> None:
    app = await review_app()
    client = app.test_client()
    fake = github_api.add_repository("octo/hello")
    for path, content in {
        "src/app.py": BUGGY_CODE,
        "src/long.py": LONG_FUNCTION,
        "config/settings.py": SECRET_FILE,
        "src/pkg/__init__.py": b"",
    }.items():
        github_api.add_file(fake, "dev", path, content)
    github_api.add_file(fake, "main", "src/only_on_main.py", GOOD_CODE)
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")

    paths = ["src/app.py", "src/long.py", "config/settings.py", "src/only_on_main.py", "src/pkg", "node_modules/x.js"]
    response = await request_review(client, headers, repository["id"], paths=paths, ref="dev")
    review = await wait_for_review(client, headers, (await response.get_json())["id"])

    assert review["status"] == "completed", review["error"]
    assert review["model"] == "static" and review["ref"] == "dev"
    assert 0 < review["score"] < 100 and "Static review of 3 files" in review["summary"]
    assert review["files_reviewed"] == 3
    assert {item["path"]: item["reason"] for item in review["files_skipped"]} == {
        "src/only_on_main.py": SKIP_REASONS["missing"],
        "src/pkg": SKIP_REASONS["directory"],
        "node_modules/x.js": SKIP_REASONS["vendored"],
    }
    by_kind = {(c["path"], c["line"], c["category"], c["severity"]): c for c in review["comments"]}
    assert ("src/app.py", 5, "correctness", "error") in by_kind  # pyflakes: undefined name
    assert "nme" in by_kind[("src/app.py", 5, "correctness", "error")]["message"]
    assert ("src/app.py", 1, "best_practices", "warning") in by_kind  # pyflakes: unused import
    assert ("src/long.py", 1, "readability", "warning") in by_kind  # 62 lines long
    secret = by_kind[("config/settings.py", 1, "security", "error")]
    assert "GitHub token" in secret["message"]
    assert any(c["category"] == "testing" and c["line"] is None for c in review["comments"])
    assert SECRET not in json.dumps(review)  # never repeated in full


# --- publishing ----------------------------------------------------------------------------------------


async def completed_pull_review(
    client: QuartClient,
    app: Quart,
    github_api: FakeGitHubAPI,
    *,
    token: str | None = "gho_publisher",  # noqa: S107 (a fake's token)
) -> tuple[dict[str, str], dict[str, Any]]:
    fake = github_api.add_repository("octo/hello")
    github_api.add_pull(fake, 8, "Greeting", "ada", "greet", {"src/app.py": BUGGY_CODE})
    headers, user_id = await new_user(client)
    if token is not None:
        await store_github_grant(app, user_id, token, "repo")
    repository = await link(client, headers, "octo/hello")
    queued = await (await request_review(client, headers, repository["id"], pull_number=8)).get_json()
    review = await wait_for_review(client, headers, queued["id"])
    assert review["status"] == "completed", review["error"]
    return headers, review


async def test_publish_posts_inline_comments_and_the_rest_in_the_body(
    review_app: AppFactory, github_api: FakeGitHubAPI
) -> None:
    app = await review_app()
    client = app.test_client()
    headers, review = await completed_pull_review(client, app, github_api)

    response = await client.post(f"{GITHUB}/reviews/{review['id']}/publish", headers=headers)
    assert response.status_code == 200, await response.get_json()
    html_url = (await response.get_json())["html_url"]
    assert html_url.startswith("https://github.com/octo/hello/pull/8#pullrequestreview-")

    [posted] = github_api.reviews
    assert posted["number"] == 8 and posted["token"] == "gho_publisher" and posted["event"] == "COMMENT"
    inline = {(c["path"], c["line"], c["side"]) for c in posted["comments"]}
    assert ("src/app.py", 5, "RIGHT") in inline and ("src/app.py", 1, "RIGHT") in inline
    assert any("nme" in c["body"] for c in posted["comments"])
    # the comment without a line (no tests) cannot be inline: it is in the body, with the summary
    assert review["summary"] in posted["body"] and "None of the reviewed files are tests" in posted["body"]
    assert f"{review['score']}/100" in posted["body"]


async def test_publish_refuses_reviews_it_cannot_post(review_app: AppFactory, github_api: FakeGitHubAPI) -> None:
    app = await review_app()
    client = app.test_client()
    headers, review = await completed_pull_review(client, app, github_api, token=None)  # public repo, anonymous

    not_connected = await client.post(f"{GITHUB}/reviews/{review['id']}/publish", headers=headers)
    assert not_connected.status_code == 409
    problem = await not_connected.get_json()
    assert problem["code"] == "conflict" and "Connect GitHub" in problem["detail"]
    assert not_connected.headers["Content-Type"].startswith("application/problem+json")

    repository_id = review["repository_id"]
    by_paths = await (await request_review(client, headers, repository_id, paths=["missing.py"])).get_json()
    failed = await (await request_review(client, headers, repository_id, pull_number=99)).get_json()
    for other in (by_paths, failed):
        await wait_for_review(client, headers, other["id"])
        response = await client.post(f"{GITHUB}/reviews/{other['id']}/publish", headers=headers)
        assert response.status_code == 409
        assert (await response.get_json())["code"] == "conflict"

    intruder, _ = await new_user(client)
    foreign = await client.post(f"{GITHUB}/reviews/{review['id']}/publish", headers=intruder)
    assert foreign.status_code == 404 and (await foreign.get_json())["code"] == "not_found"
    assert github_api.reviews == []


# --- webhook, restarts, crashes ------------------------------------------------------------------------


async def test_webhook_pull_request_event_runs_a_review(review_app: AppFactory, github_api: FakeGitHubAPI) -> None:
    app = await review_app()
    client = app.test_client()
    fake = github_api.add_repository("octo/auto")
    github_api.add_pull(fake, 5, "Auto", "ada", "feature", {"lib.py": GOOD_CODE, "test_lib.py": GOOD_CODE})
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/auto")
    await client.patch(f"{GITHUB}/repositories/{repository['id']}", json={"auto_review": True}, headers=headers)

    delivered = await deliver(client, "pull_request", pull_request_event(fake.id, "opened", number=5))
    review = await wait_for_review(client, headers, (await delivered.get_json())["queued"])
    assert review["status"] == "completed" and review["pull_number"] == 5
    assert review["files_reviewed"] == 2 and review["comments"] == []  # clean code, with its test


async def insert_review(
    app: Quart, user_headers: dict[str, str], client: QuartClient, *, job_status: str, started_ago: int = 0, attempts=0
) -> tuple[int, int]:
    """A review and its job as a process that stopped would leave them (written directly, not via the API)."""
    repository = (await (await client.get(f"{GITHUB}/repositories", headers=user_headers)).get_json())["items"][0]
    async with app.extensions["db_session_factory"]() as session:
        row = await session.get_one(Repository, repository["id"])
        started = utcnow() - timedelta(seconds=started_ago) if job_status == "running" else None
        review = Review(
            user_id=row.user_id,
            repository_id=row.id,
            pull_number=5,
            status="running" if job_status == "running" else "queued",
            comments=[],
            files_skipped=[],
            focus_areas=[],
            started_at=started,
            progress={"files_done": 0, "files_total": 1} if started else None,
        )
        session.add(review)
        await session.flush()
        job = Job(kind="review", payload={"review_id": review.id}, status=job_status, attempts=attempts)
        job.started_at = started
        session.add(job)
        await session.commit()
        return review.id, job.id


async def test_reviews_left_by_a_stopped_server_are_resumed_after_restart(
    review_app: AppFactory, github_api: FakeGitHubAPI
) -> None:
    first = await review_app()
    client = first.test_client()
    fake = github_api.add_repository("octo/hello")
    github_api.add_pull(fake, 5, "Change", "ada", "change", {"lib.py": GOOD_CODE})
    headers, _ = await new_user(client)
    await link(client, headers, "octo/hello")
    # behind the running worker's back, as another (now dead) process would have left them
    interrupted, _ = await insert_review(
        first, headers, client, job_status="running", started_ago=jobs.LEASE_SECONDS + 5
    )
    waiting, _ = await insert_review(first, headers, client, job_status="queued")

    second = await review_app()  # a fresh server on the same database
    second_client = second.test_client()
    for review_id in (interrupted, waiting):
        review = await wait_for_review(second_client, headers, review_id)
        assert review["status"] == "completed" and review["files_reviewed"] == 1


async def test_review_whose_job_was_abandoned_too_often_ends_failed_with_reason(
    review_app: AppFactory, github_api: FakeGitHubAPI
) -> None:
    app = await review_app()
    client = app.test_client()
    github_api.add_repository("octo/hello")
    headers, _ = await new_user(client)
    await link(client, headers, "octo/hello")
    review_id, job_id = await insert_review(
        app, headers, client, job_status="running", started_ago=jobs.LEASE_SECONDS + 5, attempts=jobs.MAX_ATTEMPTS
    )
    context = JobContext(settings=app.config["SETTINGS"], session_factory=app.extensions["db_session_factory"])
    await jobs.requeue_abandoned(context)

    review = await (await client.get(f"{GITHUB}/reviews/{review_id}", headers=headers)).get_json()
    assert review["status"] == "failed" and "interrupted" in review["error"]
    async with app.extensions["db_session_factory"]() as session:
        assert (await session.get_one(Job, job_id)).status == "failed"


# --- the arq backend (real Redis) ------------------------------------------------------------------------


async def run_arq_worker_burst(settings: Settings) -> None:
    """`python -m backend worker`'s worker (its job kinds, its budget gateway), in this process, until the
    queue is empty."""
    register_job_kinds()
    options = worker_options(settings, user_llm=BudgetedLLM)
    worker = Worker(**options, burst=True, handle_signals=False, poll_delay=0.05)
    try:
        await worker.async_run()
    finally:
        await worker.close()


async def job_of(app: Quart, review_id: int) -> int:
    async with app.extensions["db_session_factory"]() as session:
        rows = await session.scalars(select(Job))
        return next(row.id for row in rows if row.payload == {"review_id": review_id})


async def job_status(app: Quart, review_id: int, seconds: float = 10) -> str:
    """The review's job once it has ended (it records its outcome just after the review's)."""
    job_id = await job_of(app, review_id)
    for _ in range(int(seconds / 0.05)):
        async with app.extensions["db_session_factory"]() as session:
            status = (await session.get_one(Job, job_id)).status
        if status in ("completed", "failed"):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} still {status}")


async def announced_in_redis(redis_url: str, message: str, seconds: float = 5) -> bool:
    client = redis.from_url(redis_url)
    try:
        for _ in range(int(seconds / 0.05)):
            if await client.zscore(QUEUE_NAME, message) is not None:
                return True
            await asyncio.sleep(0.05)
        return False
    finally:
        await client.aclose()


async def test_arq_worker_runs_reviews_sent_through_redis_and_rows_redis_missed(
    review_app: AppFactory, github_api: FakeGitHubAPI, clean_redis: str
) -> None:
    app = await review_app(jobs_backend="arq", redis_url=clean_redis)
    settings: Settings = app.config["SETTINGS"]
    client = app.test_client()
    fake = github_api.add_repository("octo/hello")
    github_api.add_pull(fake, 5, "Change", "ada", "change", {"lib.py": BUGGY_CODE})
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")

    queued = await (await request_review(client, headers, repository["id"], pull_number=5)).get_json()
    missed, _ = await insert_review(app, headers, client, job_status="queued")  # Redis never heard of it
    job_id = await job_of(app, queued["id"])
    assert await announced_in_redis(clean_redis, message_id(job_id))  # sent after the commit
    status = await (await client.get(f"{GITHUB}/reviews/{queued['id']}", headers=headers)).get_json()
    assert status["status"] == "queued"  # nothing runs jobs inside the server with JOBS_BACKEND=arq

    await run_arq_worker_burst(settings)
    for review_id in (queued["id"], missed):
        review = await wait_for_review(client, headers, review_id, seconds=1)
        assert review["status"] == "completed" and review["model"] == "static"
        assert any(c["category"] == "correctness" for c in review["comments"])


async def test_publish_puts_comments_on_lines_outside_the_diff_in_the_body(
    review_app: AppFactory, github_api: FakeGitHubAPI, openai_server: FakeOpenAI
) -> None:
    app = await review_app(llm=openai_server)
    client = app.test_client()
    fake = github_api.add_repository("octo/hello")
    github_api.add_pull(fake, 9, "Fix greeting", "ada", "fix")
    github_api.add_changed_file(fake, 9, "src/app.py", BUGGY_CODE, patch=ONE_LINE_PATCH, status="modified")
    openai_server.reply = llm_review(
        comment("src/app.py", 5, "error", message="`nme` is not defined."),
        comment("src/app.py", 1, "info", message="`os` is never used."),
    )
    headers, user_id = await new_user(client)
    await store_github_grant(app, user_id, "gho_publisher", "repo")
    repository = await link(client, headers, "octo/hello")
    queued = await (await request_review(client, headers, repository["id"], pull_number=9)).get_json()
    review = await wait_for_review(client, headers, queued["id"])
    assert [(c["path"], c["line"]) for c in review["comments"]] == [("src/app.py", 5), ("src/app.py", 1)]

    response = await client.post(f"{GITHUB}/reviews/{review['id']}/publish", headers=headers)
    assert response.status_code == 200
    [posted] = github_api.reviews
    assert [(c["path"], c["line"]) for c in posted["comments"]] == [("src/app.py", 5)]
    assert "`src/app.py` line 1" in posted["body"] and "`os` is never used." in posted["body"]


async def test_offline_review_of_a_pull_request_keeps_to_the_lines_it_changed(
    review_app: AppFactory, github_api: FakeGitHubAPI
) -> None:
    app = await review_app()
    client = app.test_client()
    fake = github_api.add_repository("octo/hello")
    github_api.add_pull(fake, 9, "Fix greeting", "ada", "fix")
    content = BUGGY_CODE + SECRET_FILE
    github_api.add_changed_file(fake, 9, "src/app.py", content, patch=ONE_LINE_PATCH, status="modified")
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")
    queued = await (await request_review(client, headers, repository["id"], pull_number=9)).get_json()
    review = await wait_for_review(client, headers, queued["id"])
    # the undefined name on the changed line 5, the old secret on line 6 (still to rotate), the missing tests;
    # not the unused import on line 1, which this pull request did not touch
    assert [(c["line"], c["category"]) for c in review["comments"]] == [
        (5, "correctness"),
        (6, "security"),
        (None, "testing"),
    ]
