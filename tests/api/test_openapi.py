"""The OpenAPI document describes every route, and /docs renders from local files only."""

from __future__ import annotations

import re
from collections import Counter

from quart import Quart
from quart.testing import QuartClient

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
HIDDEN = {"/metrics", "/docs", "/docs/static/{filename}", "/openapi.json"}
READINESS = "/health/ready"  # API.md: its 503 carries the readiness checks, not problem details
WELL_KNOWN = "/.well-known/"  # RFC 8615 files (security.txt, ...): for people and tools, not API operations


async def test_spec_lists_every_route_with_tag_summary_and_unique_operation_id(
    embedded_app: Quart, embedded_client: QuartClient
) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "CodeMentor API"
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]
    for path, method, operation in operations:
        assert operation.get("tags"), f"{method.upper()} {path} has no tag"
        assert operation.get("summary"), f"{method.upper()} {path} has no summary"
        assert operation.get("operationId"), f"{method.upper()} {path} has no operationId"
    ids = Counter(operation["operationId"] for _, _, operation in operations)
    assert [name for name, count in ids.items() if count > 1] == []

    documented = {(path, method.upper()) for path, method, _ in operations}
    for rule in embedded_app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]*:)?([^>]+)>", r"{\1}", rule.rule)
        if path in HIDDEN or path.startswith(WELL_KNOWN):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is missing from the spec"
    assert {"/", "/health", "/health/ready"} <= set(spec["paths"])
    assert not HIDDEN & set(spec["paths"])
    assert not [path for path in spec["paths"] if path.startswith(WELL_KNOWN)]


async def test_spec_declares_bearer_and_cookie_security(embedded_client: QuartClient) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["cookieAuth"] == {"type": "apiKey", "in": "cookie", "name": "access_token"}
    assert {tag["name"] for tag in spec["tags"]} == {"health", "auth", "users", "exercises", "chat", "github"}


async def test_docs_reference_only_local_assets_that_are_served(embedded_client: QuartClient) -> None:
    response = await embedded_client.get("/docs")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    page = await response.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(assets) >= 3
    for asset in assets:
        assert asset.startswith("/docs/static/"), f"{asset} is not local"
        served = await embedded_client.get(asset)
        assert served.status_code == 200, asset
        assert len(await served.get_data()) > 0
    assert "<script>" not in page  # no inline script: the CSP allows only our own files
    bundle = await (await embedded_client.get("/docs/static/swagger-ui-bundle.js")).get_data(as_text=True)
    assert "swagger" in bundle.lower() and len(bundle) > 500_000  # Swagger UI 5 itself, not a stub
    initializer = await (await embedded_client.get("/docs/static/swagger-initializer.js")).get_data(as_text=True)
    assert '"/openapi.json"' in initializer


async def test_docs_static_serves_nothing_else(embedded_client: QuartClient) -> None:
    for name in ("index.html", "..%2Fapi%2Fdocs.py", "swagger-ui-bundle.js.map"):
        assert (await embedded_client.get(f"/docs/static/{name}")).status_code == 404


def operations_of(spec: dict) -> list[tuple[str, str, dict]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


async def test_every_error_is_documented_as_problem_details_and_every_response_has_a_request_id(
    embedded_client: QuartClient,
) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code", "request_id", "errors"} <= set(problem["properties"])
    for path, method, operation in operations_of(spec):
        label = f"{method.upper()} {path}"
        for status, response in operation["responses"].items():
            assert response["headers"]["X-Request-ID"]["required"] is True, f"{label} {status}"
            if int(status) >= 400 and path != READINESS:
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, f"{label} {status}"
        statuses = {int(status) for status in operation["responses"]}
        if operation.get("security"):
            assert {401, 403} <= statuses, f"{label} is signed in but documents no 401/403"
        if "requestBody" in operation:
            assert {400, 413, 415, 422} <= statuses, f"{label} takes a body but documents no body errors"
        if any(parameter["in"] == "path" for parameter in operation["parameters"]):
            assert 404 in statuses, f"{label} takes an id but documents no 404"
        if path.startswith("/api/v1/"):
            assert 503 in statuses, f"{label} documents no 503 for a database outage"


async def test_rate_limited_answers_document_retry_after(embedded_client: QuartClient) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    login = spec["paths"]["/api/v1/auth/login"]["post"]["responses"]["429"]
    assert login["headers"]["Retry-After"]["required"] is True
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(login["headers"])


async def test_bodies_without_content_redirects_and_other_media_types_are_documented(
    embedded_client: QuartClient,
) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    paths = spec["paths"]
    for path, method in (
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/users/me", "delete"),
        ("/api/v1/chat/conversations/{conversation_id}", "delete"),
    ):
        no_content = paths[path][method]["responses"]["204"]
        assert "content" not in no_content, f"{method.upper()} {path}"
    start = paths["/api/v1/auth/oauth/{provider}"]["get"]
    assert start["responses"]["302"]["headers"]["Location"]["required"] is True
    assert "422" not in start["responses"]  # a browser lands here: a bad query is a redirect, not a 422
    assert start["parameters"][0]["schema"] == {"enum": ["github", "google"]}
    export = paths["/api/v1/users/me/progress/export"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(export)
    message = paths["/api/v1/chat/conversations/{conversation_id}/messages"]["post"]["responses"]
    assert "text/event-stream" in message["200"]["content"] and "application/json" in message["201"]["content"]


async def test_request_bodies_and_ids_state_their_constraints(embedded_client: QuartClient) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    paths = spec["paths"]
    assert paths["/api/v1/auth/login"]["post"]["requestBody"]["required"] is True
    assert paths["/api/v1/users/me"]["patch"]["requestBody"]["required"] is False  # every field optional
    exercise_id = paths["/api/v1/exercises/{exercise_id}"]["get"]["parameters"][0]["schema"]
    assert exercise_id == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    register = paths["/api/v1/auth/register"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "pattern" in register["properties"]["password"] and "pattern" in register["properties"]["email"]
    profile = paths["/api/v1/users/me"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert profile["properties"]["name"]["type"] == "string"  # optional, but never null
    assert profile["properties"]["timezone"]["format"] == "iana-time-zone"


async def test_an_id_no_database_can_hold_is_404_problem(embedded_client: QuartClient) -> None:
    response = await embedded_client.get("/api/v1/exercises/2147483648", headers={"X-Request-ID": "big-id"})
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert (await response.get_json())["request_id"] == "big-id"


async def test_oauth_provider_routes_do_not_swallow_other_auth_paths(embedded_client: QuartClient) -> None:
    response = await embedded_client.get("/api/v1/auth/oauth/exchange")
    assert response.status_code == 405 and response.headers["Allow"] == "OPTIONS, POST"
    assert (await embedded_client.get("/api/v1/auth/oauth/gitlab")).status_code == 404
