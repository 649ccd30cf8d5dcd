"""The OpenAPI document describes every route, and /docs renders from local files only."""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from pathlib import Path

from quart import Quart
from quart.testing import QuartClient

BACKEND = Path(__file__).resolve().parents[2] / "backend"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
HIDDEN = {"/metrics", "/docs", "/docs/static/{filename}", "/openapi.json"}
READINESS = "/health/ready"  # docs/API.md: its 503 carries the readiness checks, not problem details
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


async def test_spec_declares_bearer_cookie_and_csrf_security_on_every_operation(embedded_client: QuartClient) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    assert (schemes["cookieAuth"]["in"], schemes["cookieAuth"]["name"]) == ("cookie", "access_token")
    assert (schemes["csrfToken"]["in"], schemes["csrfToken"]["name"]) == ("header", "X-CSRF-Token")
    assert "refresh" in schemes["csrfToken"]["description"]  # it rotates: clients must read it again
    assert {tag["name"] for tag in spec["tags"]} == {"health", "auth", "users", "exercises", "chat", "github"}
    assert spec["servers"][0]["url"] == "/"
    for path, method, operation in operations_of(spec):
        assert "security" in operation, f"{method.upper()} {path} leaves its security implicit"
        for requirement in operation["security"]:
            if "cookieAuth" in requirement:  # cookies ride along cross-site: unsafe methods need the header
                assert ("csrfToken" in requirement) == (method != "get"), f"{method.upper()} {path}"
    paths = spec["paths"]
    assert paths["/health"]["get"]["security"] == [] and paths["/api/v1/auth/login"]["post"]["security"] == []
    assert {"bearerAuth": []} in paths["/api/v1/users/me"]["get"]["security"]
    refresh = paths["/api/v1/auth/refresh"]["post"]
    assert {"name": "refresh_token", "in": "cookie"}.items() <= refresh["parameters"][0].items()
    assert "Set-Cookie" in refresh["responses"]["200"]["headers"]


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
    assert spec["components"]["headers"]["X-Request-ID"]["required"] is True
    for path, method, operation in operations_of(spec):
        label = f"{method.upper()} {path}"
        for status, response in operation["responses"].items():
            assert response["headers"]["X-Request-ID"] == {"$ref": "#/components/headers/X-Request-ID"}, label
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
    assert login["headers"]["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}
    assert spec["components"]["headers"]["Retry-After"]["required"] is True
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
    # One media type per operation: generators handle neither a CSV-or-JSON 200 nor a JSON-or-stream answer.
    for path, method, operation in operations_of(spec):
        for status, response in operation["responses"].items():
            assert len(response.get("content", {})) <= 1, f"{method.upper()} {path} {status}"
    assert set(paths["/api/v1/users/me/progress/export"]["get"]["responses"]["200"]["content"]) == {"application/json"}
    assert set(paths["/api/v1/users/me/progress/export.csv"]["get"]["responses"]["200"]["content"]) == {"text/csv"}
    message = paths["/api/v1/chat/conversations/{conversation_id}/messages"]["post"]["responses"]
    assert "200" not in message and "application/json" in message["201"]["content"]
    assert "stream" not in spec["components"]["schemas"]["MessageCreate"]["properties"]
    stream = paths["/api/v1/chat/conversations/{conversation_id}/messages/stream"]["post"]
    assert stream["operationId"] == "stream_message"
    events = stream["responses"]["200"]["content"]["text/event-stream"]["x-event-schema"]
    assert events == {"$ref": "#/components/schemas/ChatStreamEvent"}
    event = spec["components"]["schemas"]["ChatStreamEvent"]
    assert event["discriminator"]["propertyName"] == "event"
    assert set(event["discriminator"]["mapping"]) == {"start", "delta", "done", "error"}


async def test_request_bodies_and_ids_state_their_constraints(embedded_client: QuartClient) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    paths, schemas = spec["paths"], spec["components"]["schemas"]
    assert paths["/api/v1/auth/login"]["post"]["requestBody"]["required"] is True
    assert paths["/api/v1/users/me"]["patch"]["requestBody"]["required"] is False  # every field optional
    exercise_id = paths["/api/v1/exercises/{exercise_id}"]["get"]["parameters"][0]["schema"]
    assert exercise_id == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    register = schemas["RegisterRequest"]
    assert "pattern" in register["properties"]["password"] and "pattern" in register["properties"]["email"]
    profile = schemas["UserUpdate"]
    assert profile["properties"]["name"]["type"] == "string" and "default" not in profile["properties"]["name"]
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


# --- what client generators need -------------------------------------------------------------------

OPERATION_ID = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
BODY_MEDIA_TYPES = {"application/json", "application/problem+json"}


async def test_operation_ids_are_the_handlers_names_unique_and_without_a_repeated_verb(
    embedded_app: Quart, embedded_client: QuartClient
) -> None:
    """Every handler, today's and tomorrow's: its name is its operation id (`get_exercise`, not
    `get_get_exercise`), and a name that starts with an HTTP verb starts with its own method's."""
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    handlers = {}
    for rule in embedded_app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]*:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            func = embedded_app.view_functions[rule.endpoint]
            handlers[(path, method.lower())] = getattr(func, "_quart_schema_operation_id", func.__name__)
    seen: dict[str, str] = {}
    for path, method, operation in operations_of(spec):
        label, operation_id = f"{method.upper()} {path}", operation["operationId"]
        assert operation_id == handlers[(path, method)], label
        assert OPERATION_ID.match(operation_id), f"{label}: {operation_id} is not snake_case"
        words = operation_id.split("_")
        assert len(words) == 1 or words[0] != words[1], f"{label}: {operation_id} stutters"
        if words[0] in HTTP_METHODS:
            assert words[0] == method, f"{label}: {operation_id} names another method"
        assert operation_id not in seen, f"{label} and {seen[operation_id]} share {operation_id}"
        seen[operation_id] = label


async def test_every_json_body_is_a_named_component(embedded_client: QuartClient) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    schemas = spec["components"]["schemas"]
    for name, schema in schemas.items():
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", name) and not name.endswith("Read"), name
        assert schema["title"] == name
        if schema.get("type") == "object":  # e.g. a serializer's `-> dict` annotation erases the fields
            assert schema.get("properties"), f"{name} is an untyped object"
    for path, method, operation in operations_of(spec):
        label = f"{method.upper()} {path}"
        bodies = [operation["requestBody"]] if "requestBody" in operation else []
        for body in [*bodies, *operation["responses"].values()]:
            for media_type, content in body.get("content", {}).items():
                if media_type in BODY_MEDIA_TYPES:
                    ref = content["schema"]["$ref"]
                    assert ref.removeprefix("#/components/schemas/") in schemas, f"{label}: {ref}"
    for name in ("User", "TokenPayload", "Problem", "Review", "Exercise", "ExercisePage", "Message", "UserExport"):
        assert name in schemas, name
    assert schemas["TokenPayload"]["properties"]["user"] == {"$ref": "#/components/schemas/User"}
    assert schemas["ExercisePage"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/ExerciseSummary"}
    export = schemas["UserExport"]["properties"]
    assert export["reviews"]["items"] == {"$ref": "#/components/schemas/Review"}
    for section, schema in export.items():  # a typed account export: every section is a named type
        assert "$ref" in schema or "$ref" in schema.get("items", {}), section
    assert export["learning_profile"] == {"$ref": "#/components/schemas/ExportedLearningProfile"}


async def test_optional_query_parameters_are_left_out_not_null(embedded_client: QuartClient) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    for path, method, operation in operations_of(spec):
        for parameter in operation["parameters"]:
            text = json.dumps(parameter["schema"])
            assert '"null"' not in text and '"default": null' not in text, f"{method.upper()} {path} {parameter}"
    exercises = {p["name"]: p for p in spec["paths"]["/api/v1/exercises"]["get"]["parameters"]}
    assert exercises["difficulty"]["schema"]["enum"] == ["easy", "medium", "hard"]


async def test_response_fields_are_enums_where_requests_are(embedded_client: QuartClient) -> None:
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    schemas = spec["components"]["schemas"]
    user = schemas["User"]["properties"]
    for field in ("programming_language", "skill_level", "learning_style", "time_commitment"):
        update = schemas["UserUpdate"]["properties"][field]["anyOf"][0]["enum"]
        assert user[field]["anyOf"][0]["enum"] == update, field
    answers = schemas["OnboardingAnswers"]["properties"]
    assert answers["skill_level"]["enum"] == user["skill_level"]["anyOf"][0]["enum"]
    assert "enum" in schemas["OnboardingQuestion"]["properties"]["field"]


async def test_problem_code_is_an_enum_of_every_code_the_code_base_raises(embedded_client: QuartClient) -> None:
    """Scans backend/ for error codes (class attributes, `code=` arguments, the HTTP error table): a new
    code fails here until `ErrorCode` (and so the document) has it."""
    spec = await (await embedded_client.get("/openapi.json")).get_json()
    documented = set(spec["components"]["schemas"]["Problem"]["properties"]["code"]["enum"])
    raised: set[str] = set()
    for source in BACKEND.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            raised |= codes_in(node)
    from backend.errors import HTTP_ERROR_CODES

    assert len(raised) > 20  # the scan finds them
    assert raised | set(HTTP_ERROR_CODES.values()) <= documented, sorted(raised - documented)
    error = spec["components"]["schemas"]["StreamError"]["properties"]["code"]
    assert error == {"$ref": "#/components/schemas/Problem"} or set(error["enum"]) == documented


def codes_in(node: ast.AST) -> set[str]:
    """String constants assigned to `code` (`code = "x"`, `code, detail = "x", ...`) or passed as `code="x"`."""
    found: set[str] = set()
    if isinstance(node, ast.Assign):
        for target in node.targets:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            for name, value in zip(names, values, strict=False):
                if isinstance(name, ast.Name) and name.id == "code":
                    found |= string_constants(value)
    if isinstance(node, ast.keyword) and node.arg == "code":
        found |= string_constants(node.value)
    return found


def string_constants(node: ast.AST) -> set[str]:
    """`"x"`, or either branch of `"x" if ... else "y"`."""
    if isinstance(node, ast.IfExp):
        return string_constants(node.body) | string_constants(node.orelse)
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"[a-z_]+", node.value):
        return {node.value}
    return set()
