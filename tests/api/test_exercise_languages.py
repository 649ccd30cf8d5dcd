"""Exercises in the student's language through the real app (both stacks) and the real sandbox runner:
the graded languages, `?language=`, JavaScript and TypeScript submissions graded on neutral cases with hidden
cases hidden, and the daily exercise in the student's language or in Python with the reason."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from backend.integrations.sandbox.languages import LANGUAGES
from backend.models.exercises import Exercise
from tests.api.test_chat import llm_settings
from tests.api.test_exercises import EXERCISES, add_exercise, sign_in, submit
from tests.conftest import AppFactory
from tests.fakes.llm_servers import FakeOpenAI

if not (LANGUAGES["javascript"].available and LANGUAGES["typescript"].available):
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must grade JavaScript and TypeScript: node or the TypeScript compiler is missing")
    pytest.skip("node or the sandbox's TypeScript compiler is not installed", allow_module_level=True)

VISIBLE = [{"name": "small", "function": "add_numbers", "args": "[1, 2]", "expected": "3"}]
HIDDEN = [
    {"name": "large", "function": "add_numbers", "args": "[1000, 2345]", "expected": "3345"},
    {"name": "negative", "function": "add_numbers", "args": "[-7, 3]", "expected": "-4"},
    {"name": "lists", "function": "add_numbers", "args": "[[1], [2]]", "expected": "[1, 2]"},
]
JS_SOLUTION = (
    "function addNumbers(first, second) {\n  return Array.isArray(first) ? [...first, ...second] : first + second;\n}\n"
)
TS_SOLUTION = (
    "function addNumbers(first: number | number[], second: number | number[]): number | number[] {\n"
    "  if (Array.isArray(first) && Array.isArray(second)) return [...first, ...second];\n"
    "  return (first as number) + (second as number);\n}\n"
)


async def add_family(app: Quart, family: str) -> dict[str, int]:
    """One catalog-like exercise in Python, JavaScript and TypeScript (one family)."""
    ids = {
        "python": await add_exercise(app, slug=family, family=family, topics=[family]),
    }
    for language, solution in (("javascript", JS_SOLUTION), ("typescript", TS_SOLUTION)):
        ids[language] = await add_exercise(
            app,
            slug=f"{family}-{language}",
            family=family,
            language=language,
            starter_code="function addNumbers(first, second) {}\n",
            solution=solution,
            examples=VISIBLE,
            tests=VISIBLE + HIDDEN,
            topics=[family],  # lists filtered by it see this family alone, whatever else the database holds
        )
    return ids


async def test_graded_languages_are_listed_with_versions(client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    response = await client.get(f"{EXERCISES}/languages", headers=headers)
    assert response.status_code == 200
    items = {item["name"]: item for item in (await response.get_json())["items"]}
    assert next(iter(items)) == "python"
    assert {"python", "javascript", "typescript"} <= set(items)
    assert items["typescript"]["version"] == "5.9.3"
    assert items["javascript"]["version"].split(".")[0].isdigit()


async def test_reads_switch_language_within_the_family(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    ids = await add_family(app, "add-family-read")
    response = await client.get(f"{EXERCISES}/{ids['python']}?language=javascript", headers=headers)
    body = await response.get_json()
    assert response.status_code == 200, body
    assert (body["id"], body["language"]) == (ids["javascript"], "javascript")
    # Examples read in the exercise's language; hidden cases and the solution never appear.
    assert body["examples"] == [{"input": "addNumbers(1, 2)", "expected_output": "3"}]
    assert "2345" not in json.dumps(body) and "Array.isArray" not in json.dumps(body)
    missing = await client.get(f"{EXERCISES}/{ids['python']}?language=cobol", headers=headers)
    assert missing.status_code == 404
    listed = await (await client.get(f"{EXERCISES}?topic=add-family-read", headers=headers)).get_json()
    assert {item["language"]: item["id"] for item in listed["items"]} == ids
    listed = await (
        await client.get(f"{EXERCISES}?topic=add-family-read&language=typescript", headers=headers)
    ).get_json()
    assert [item["id"] for item in listed["items"]] == [ids["typescript"]]


@pytest.mark.parametrize("language", ["javascript", "typescript"])
async def test_submissions_are_graded_in_the_exercises_language(app: Quart, client: QuartClient, language: str) -> None:
    headers, _ = await sign_in(client)
    ids = await add_family(app, f"add-family-{language}")
    solution = JS_SOLUTION if language == "javascript" else TS_SOLUTION
    passed = await submit(client, headers, ids[language], solution)
    assert passed["submission"]["status"] == "passed", passed["submission"]["results"]
    if language == "javascript":
        assert passed["submission"]["rubric"]["style"] is None  # no offline linter: not scored
    else:  # the compiler's own unused-code check
        # (not the grade: its efficiency part times the run, and a loaded machine slows it)
        assert passed["submission"]["rubric"]["style"] == 1.0
        unused = TS_SOLUTION.replace("  if (Array", "  const spare = 1;\n  if (Array")
        untidy = (await submit(client, headers, ids[language], unused))["submission"]
        assert untidy["status"] == "passed" and untidy["rubric"]["style"] < 1.0
        assert "line 2: 'spare' is declared but its value is never read." in json.dumps(
            untidy["improvements"] + [untidy["feedback"]]
        )
    assert passed["submission"]["grade"] >= 75
    assert passed["user_exercise"]["status"] == "completed"

    wrong = solution.replace("first + second", "first - second").replace(
        "(first as number) + (second as number)", "(first as number) - (second as number)"
    )
    failed = (await submit(client, headers, ids[language], wrong))["submission"]
    assert failed["status"] == "failed"
    by_name = {row["name"]: row for row in failed["results"]}
    assert not by_name["large"]["passed"] and by_name["lists"]["passed"]
    # A hidden case says how it failed, never its input or expected value.
    assert "input" not in by_name["large"] or by_name["large"].get("input") is None
    assert "2345" not in json.dumps(failed)
    # The visible example shows everything, in the language's syntax.
    assert by_name["small"]["input"] == "addNumbers(1, 2)"


async def test_typescript_type_error_is_graded_with_its_line(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    ids = await add_family(app, "add-family-types")
    code = "function addNumbers(first: number, second: number): number {\n  const x: string = first;\n  return 0;\n}\n"
    body = (await submit(client, headers, ids["typescript"], code))["submission"]
    assert body["status"] == "error"
    assert "main.ts:2" in body["stderr"]


async def test_daily_uses_the_students_language_or_says_why_not(app: Quart, client: QuartClient) -> None:
    ids = await add_family(app, "add-family-daily")
    headers, _ = await sign_in(client, programming_language="javascript")
    daily = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert daily["exercise"]["language"] == "javascript"
    assert daily["language_note"] is None

    headers, _ = await sign_in(client, programming_language="rust")
    daily = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert daily["exercise"]["language"] == "python"
    assert "rust" in daily["language_note"].lower() and "JavaScript" in daily["language_note"]
    assert ids  # the family exists in every graded language


async def test_seeded_catalog_has_every_translated_language(app: Quart) -> None:
    from sqlalchemy import func, select

    from backend.services.exercises import seed_exercises

    async with app.extensions["db_session_factory"]() as session:
        await seed_exercises(session)
        await session.commit()
        rows = (
            await session.execute(
                select(Exercise.language, func.count()).where(Exercise.family.is_not(None)).group_by(Exercise.language)
            )
        ).all()
    counts: dict[str, Any] = dict(rows)  # type: ignore[arg-type]
    assert counts["python"] >= 50 and counts["javascript"] >= 50 and counts["typescript"] >= 50


@pytest.fixture
def fake_llm(openai_server: FakeOpenAI) -> FakeOpenAI:
    openai_server.reset()
    return openai_server


def generated_in_javascript(**overrides: Any) -> dict[str, Any]:
    exercise = {
        "title": "Multiply two numbers",
        "description": "Write `multiply(a, b)`.",
        "starter_code": 'function multiply(a, b) {\n  throw new Error("write your solution here");\n}\n',
        "solution": "function multiply(a, b) {\n  return a * b;\n}\n",
        "difficulty": "easy",
        "exercise_type": "algorithm",
        "topics": ["math"],
        "hints": ["One operator.", "It is `*`.", "Return a * b."],
        "tests": [
            {"name": f"case {n}", "function": "multiply", "args": [n, n + 1], "expected": n * (n + 1)} for n in range(6)
        ],
    }
    exercise.update(overrides)
    return exercise


async def test_generate_in_a_graded_language_is_verified_by_running_it(
    make_app: AppFactory, fake_llm: FakeOpenAI
) -> None:
    app = await make_app(**llm_settings(fake_llm))
    client = app.test_client()
    headers, _ = await sign_in(client)
    fake_llm.reply = json.dumps(generated_in_javascript())
    response = await client.post(f"{EXERCISES}/generate", json={"language": "javascript"}, headers=headers)
    body = await response.get_json()
    assert response.status_code == 201, body
    assert body["language"] == "javascript" and body["examples"][0] == {
        "input": "multiply(0, 1)",
        "expected_output": "0",
    }
    assert "JSON" in json.dumps(fake_llm.last_request) and "JavaScript" in json.dumps(fake_llm.last_request)
    passed = await submit(client, headers, body["id"], "function multiply(a, b) { return a * b; }")
    assert passed["submission"]["status"] == "passed"

    # A solution that fails its own cases is rejected; an ungraded language is a 422 before the LLM is asked.
    fake_llm.reply = json.dumps(generated_in_javascript(solution="function multiply(a, b) { return a + b; }"))
    rejected = await client.post(f"{EXERCISES}/generate", json={"language": "javascript"}, headers=headers)
    assert rejected.status_code == 502
    cobol = await client.post(f"{EXERCISES}/generate", json={"language": "cobol"}, headers=headers)
    assert cobol.status_code == 422 and (await cobol.get_json())["code"] == "validation_error"


async def test_a_language_without_its_toolchain_is_never_offered(
    app: Quart, client: QuartClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """node missing (as detected at start-up): JavaScript is not listed, its exercises are neither listed,
    read nor assigned, generating in it is a 422, and a JavaScript student gets Python with the reason."""
    ids = await add_family(app, "add-family-missing")
    headers, _ = await sign_in(client, programming_language="javascript")
    javascript = LANGUAGES["javascript"]
    monkeypatch.setitem(javascript.__dict__, "version", None)  # the cached detection result
    assert not javascript.available
    names = [
        item["name"]
        for item in (await (await client.get(f"{EXERCISES}/languages", headers=headers)).get_json())["items"]
    ]
    assert "javascript" not in names and "python" in names
    listed = await (await client.get(f"{EXERCISES}?topic=add-family-missing", headers=headers)).get_json()
    assert "javascript" not in {item["language"] for item in listed["items"]}
    assert (await client.get(f"{EXERCISES}/{ids['javascript']}", headers=headers)).status_code == 404
    generate = await client.post(f"{EXERCISES}/generate", json={"language": "javascript"}, headers=headers)
    assert generate.status_code == 422
    daily = await (await client.get(f"{EXERCISES}/daily", headers=headers)).get_json()
    assert daily["exercise"]["language"] == "python" and "javascript" in daily["language_note"].lower()


async def test_only_what_the_visible_examples_printed_is_shown(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    ids = await add_family(app, "add-family-output")
    code = 'console.log("loaded");\n' + JS_SOLUTION.replace(
        "{\n", '{\n  console.log("args", JSON.stringify([first, second]));\n', 1
    )
    body = (await submit(client, headers, ids["javascript"], code))["submission"]
    assert body["status"] == "passed", body["results"]
    assert "loaded" in body["stdout"] and "args [1,2]" in body["stdout"]
    assert "2345" not in body["stdout"] and "[-7,3]" not in body["stdout"]
