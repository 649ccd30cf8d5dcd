"""Every error leaves as the problem details of docs/API.md, with the request id and nothing internal."""

from __future__ import annotations

import json

import pytest
from quart.testing import QuartClient
from quart.wrappers import Response

from backend.middleware.body import MAX_BODY_BYTES

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id"}


async def problem(response: Response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    body = await response.get_json()
    assert body["code"] == code and body["status"] == status and body["type"] == "about:blank"
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


async def test_unknown_route_is_404_problem(embedded_client: QuartClient) -> None:
    response = await embedded_client.get("/api/v1/nothing-here")
    body = await problem(response, 404, "not_found")
    assert body == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "The requested resource was not found.",
        "code": "not_found",
        "request_id": response.headers["X-Request-ID"],
    }


async def test_wrong_method_is_405_with_allow(embedded_client: QuartClient) -> None:
    response = await embedded_client.delete("/health")
    body = await problem(response, 405, "method_not_allowed")
    assert body["title"] == "Method Not Allowed"
    assert "GET" in response.headers["Allow"]


async def test_invalid_json_is_400_invalid_json(embedded_probe_client: QuartClient) -> None:
    response = await embedded_probe_client.post(
        "/_probe/echo", data='{"email": "a@b.c", ', headers={"Content-Type": "application/json"}
    )
    body = await problem(response, 400, "invalid_json")
    assert body["title"] == "Bad Request"
    assert "errors" not in body


async def test_validation_error_is_422_with_fields_and_no_input_echo(embedded_probe_client: QuartClient) -> None:
    secret = "short-pw"
    response = await embedded_probe_client.post(
        "/_probe/echo", json={"email": "x" * 60, "password": secret, "tags": ["a", 1, "c", "d"]}
    )
    body = await problem(response, 422, "validation_error")
    fields = {error["field"] for error in body["errors"]}
    assert {"email", "password", "tags"} <= fields or {"email", "password", "tags.1"} <= fields
    assert all(set(error) == {"field", "message"} for error in body["errors"])
    assert secret not in json.dumps(body) and "x" * 60 not in json.dumps(body)


async def test_missing_required_field_names_the_field(embedded_probe_client: QuartClient) -> None:
    response = await embedded_probe_client.post("/_probe/echo", json={"password": "long-enough-password"})
    body = await problem(response, 422, "validation_error")
    assert body["errors"] == [{"field": "email", "message": "Field required"}]


async def test_body_over_one_mib_is_413(embedded_probe_client: QuartClient) -> None:
    payload = json.dumps({"email": "a@b.c", "password": "p" * MAX_BODY_BYTES})
    response = await embedded_probe_client.post(
        "/_probe/echo", data=payload, headers={"Content-Type": "application/json"}
    )
    body = await problem(response, 413, "payload_too_large")
    assert body["title"] == "Request Entity Too Large" or body["title"] == "Content Too Large"


async def test_form_body_is_415(embedded_probe_client: QuartClient) -> None:
    response = await embedded_probe_client.post("/_probe/echo", form={"email": "a@b.c"})
    await problem(response, 415, "unsupported_media_type")


async def test_text_body_is_415(embedded_probe_client: QuartClient) -> None:
    response = await embedded_probe_client.post("/_probe/echo", data="email=a", headers={"Content-Type": "text/plain"})
    await problem(response, 415, "unsupported_media_type")


async def test_app_error_renders_its_code_and_detail(embedded_probe_client: QuartClient) -> None:
    response = await embedded_probe_client.get("/_probe/conflict")
    body = await problem(response, 409, "email_taken")
    assert body["detail"] == "That already exists." and body["title"] == "Conflict"


async def test_unexpected_error_is_generic_500_and_logged_with_request_id(
    embedded_probe_client: QuartClient, capsys: pytest.CaptureFixture[str]
) -> None:
    response = await embedded_probe_client.get("/_probe/boom", headers={"X-Request-ID": "trace-500"})
    body = await problem(response, 500, "internal_error")
    text = json.dumps(body)
    assert "secret internal detail" not in text and "RuntimeError" not in text and "Traceback" not in text
    assert body["request_id"] == "trace-500"
    log = capsys.readouterr().out
    entry = log[log.index("request.unhandled_exception") :]
    assert "request_id=trace-500" in entry.splitlines()[0]
    assert "Traceback" in entry and "RuntimeError" in entry
