"""Reviews that never dead-end: a whole repository at a ref, the static review standing in for a model
that is down or talks nonsense, a review with nothing to read, and job rows that follow their review."""

from __future__ import annotations

from backend.models.learner import LearnerProfile
from tests.api.test_github import link, new_user, request_review
from tests.api.test_reviews import (
    BUGGY_CODE,
    GOOD_CODE,
    AppFactory,
    job_status,
    review_app,
    wait_for_review,
)
from tests.fakes.github_api import FakeGitHubAPI
from tests.fakes.llm_servers import FakeOpenAI

__all__ = ["review_app"]  # the fixture, shared with test_reviews.py


async def test_ref_alone_or_empty_body_reviews_the_repository_most_relevant_files_first(
    review_app: AppFactory, github_api: FakeGitHubAPI
) -> None:
    app = await review_app()
    client = app.test_client()
    fake = github_api.add_repository("octo/hello")
    for path, content in {
        "src/app.py": BUGGY_CODE,
        "tests/test_app.py": GOOD_CODE,
        "README.md": b"# Hello\n",
        "node_modules/left-pad/index.js": b"module.exports = 1;\n",
        "logo.png": b"\x89PNG\r\n\x1a\n\x00",
    }.items():
        github_api.add_file(fake, "feature/dev", path, content)
    github_api.add_file(fake, "main", "main.py", GOOD_CODE)
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")

    queued = await request_review(client, headers, repository["id"], ref="feature/dev")
    assert queued.status_code == 202
    review = await wait_for_review(client, headers, (await queued.get_json())["id"])
    assert review["status"] == "completed", review["error"]
    assert review["ref"] == "feature/dev" and review["model"] == "static" and review["files_reviewed"] == 2
    assert {item["path"] for item in review["files_skipped"]} == {
        "README.md",
        "node_modules/left-pad/index.js",
        "logo.png",
    }
    assert any("nme" in comment["message"] for comment in review["comments"])

    default = await request_review(client, headers, repository["id"])  # `{}`: the default branch
    review = await wait_for_review(client, headers, (await default.get_json())["id"])
    assert review["status"] == "completed" and review["ref"] == "main" and review["files_reviewed"] == 1


async def test_llm_down_falls_back_to_the_static_review(
    review_app: AppFactory, github_api: FakeGitHubAPI, openai_server: FakeOpenAI
) -> None:
    app = await review_app(llm=openai_server)
    openai_server.status = 503
    client = app.test_client()
    fake = github_api.add_repository("octo/hello")
    github_api.add_pull(fake, 3, "Change", "ada", "change", {"app.py": BUGGY_CODE})
    headers, user_id = await new_user(client)
    async with app.extensions["db_session_factory"]() as session:  # what graded exercises taught the tutor
        session.add(LearnerProfile(user_id=user_id, mistake_counts={"edge_case_empty": 3}, summary=""))
        await session.commit()
    repository = await link(client, headers, "octo/hello")

    queued = await (await request_review(client, headers, repository["id"], pull_number=3)).get_json()
    review = await wait_for_review(client, headers, queued["id"])
    assert review["status"] == "completed" and review["model"] == "static"
    assert "could not be reached" in review["summary"] and review["completed_at"] is not None
    assert "edge cases on empty input" in openai_server.last_request["messages"][0]["content"]  # weak spots
    assert any("nme" in comment["message"] for comment in review["comments"])
    assert await job_status(app, queued["id"]) == "completed"


async def test_every_file_skipped_completes_saying_why_and_failures_set_completed_at(
    review_app: AppFactory, github_api: FakeGitHubAPI
) -> None:
    app = await review_app()
    client = app.test_client()
    github_api.add_repository("octo/hello")
    headers, _ = await new_user(client)
    repository = await link(client, headers, "octo/hello")

    paths = ["vendor/lib.py", "logo.png", "package-lock.json"]
    queued = await (await request_review(client, headers, repository["id"], paths=paths)).get_json()
    review = await wait_for_review(client, headers, queued["id"])
    assert review["status"] == "completed" and review["files_reviewed"] == 0 and review["score"] is None
    assert review["summary"].startswith("Nothing was reviewed: all 3 files had to be skipped")
    assert "binary file" in review["summary"] and review["completed_at"] is not None
    assert await job_status(app, queued["id"]) == "completed"

    missing = await (await request_review(client, headers, repository["id"], pull_number=404)).get_json()
    failed = await wait_for_review(client, headers, missing["id"])
    assert failed["status"] == "failed" and failed["completed_at"] is not None
    assert await job_status(app, missing["id"]) == "failed"  # the job row follows its review
    no_such_ref = await (await request_review(client, headers, repository["id"], ref="no/such-branch")).get_json()
    failed = await wait_for_review(client, headers, no_such_ref["id"])
    assert failed["status"] == "failed" and "the ref" in failed["error"]
