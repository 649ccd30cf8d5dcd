"""The OpenAPI document: quart-schema's, shaped for client generators and completed with every answer a route
can give that is not its success body.

quart-schema documents what `validate_response` / `document_response` declare. This module makes that a
document clients generate clean code from (docs/API.md says what it promises):

- every request and response body is a named component (`$ref`), named after its model (`User`, `Problem`,
  `ExercisePage`, …); operation ids are the handlers' names (`get_exercise`, `submit_solution`);
- problem details (`application/problem+json`, the `Problem` schema) for the errors a route's own
  declarations imply — signed in (401, 403), a JSON body (400, 413, 415, 422), validated query
  parameters (422), path parameters (404), anything under `/api/v1` (503 when the database is away) —
  plus the statuses a route names itself with `@problem_responses(409, 429, ...)`;
- `@no_content` (204, no body), `@redirects` (302 with `Location`, no body), `@streams_events` (200
  `text/event-stream` with its events a named component) and `@alternative_content` (e.g. CSV);
- security on every operation (`[]` when public; the CSRF header with cookies on unsafe methods), the
  cookies a sign-in sets, the `X-Request-ID` header on every response, `Retry-After` and `RateLimit-*` on 429.

Redirect routes (browser sign-in flows) answer a bad query with a redirect, never a 422.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode
from quart import request
from quart_schema.openapi import QUART_SCHEMA_OPERATION_ID_ATTRIBUTE, OpenAPIProvider
from quart_schema.validation import QUART_SCHEMA_REQUEST_ATTRIBUTE, QUART_SCHEMA_RESPONSE_ATTRIBUTE, DataSource
from werkzeug.routing import BaseConverter, IntegerConverter, Rule

from backend.api.guards import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER, REFRESH_COOKIE, SAFE_METHODS
from backend.api.openapi.components import Components, is_model
from backend.errors import NotFound
from backend.schemas.auth import TokenPayload
from backend.schemas.common import MAX_ID, Problem

T = TypeVar("T", bound=Callable[..., Any])

PROBLEMS_ATTRIBUTE = "_codementor_problem_statuses"
NO_CONTENT_ATTRIBUTE = "_codementor_no_content"
REDIRECT_ATTRIBUTE = "_codementor_redirect"
ALTERNATIVES_ATTRIBUTE = "_codementor_alternative_content"
EVENT_STREAM_ATTRIBUTE = "_codementor_event_stream"
COOKIE_PARAMETERS_ATTRIBUTE = "_codementor_cookie_parameters"
PROBLEM_MEDIA_TYPE = "application/problem+json"
EVENT_STREAM_MEDIA_TYPE = "text/event-stream"
# OpenAPI 3.1 cannot type the items of a stream (3.2's `itemSchema` can): the event schema rides along here.
EVENT_SCHEMA_EXTENSION = "x-event-schema"
API_PREFIX = "/api/v1/"
BEARER_SCHEME, COOKIE_SCHEME, CSRF_SCHEME = "bearerAuth", "cookieAuth", "csrfToken"
SECURITY_SCHEMES = {
    BEARER_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "API clients: `Authorization: Bearer <access_token>` from the token payload (15 minutes; "
        "`POST /api/v1/auth/refresh` with the `refresh_token` for new ones). Wins over cookies; no CSRF header.",
    },
    COOKIE_SCHEME: {
        "type": "apiKey",
        "in": "cookie",
        "name": ACCESS_COOKIE,
        "description": f"Browsers: the httpOnly `{ACCESS_COOKIE}` cookie that sign-in sets (with `{REFRESH_COOKIE}`, "
        f"path `/api/v1/auth`, and the readable `{CSRF_COOKIE}`). Every unsafe method also needs `{CSRF_HEADER}`.",
    },
    CSRF_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": CSRF_HEADER,
        "description": f"With cookie auth, POST/PUT/PATCH/DELETE send the `{CSRF_COOKIE}` cookie's value here "
        "(else 403 `csrf_failed`). It changes on every sign-in and every refresh: read the cookie (or the "
        "token payload's `csrf_token`) again after each.",
    },
}
SERVERS = [{"url": "/", "description": "The server that serves this document (every path starts at its root)."}]

# What each status means across the API, with the codes it carries (`Problem.code` lists them all).
PROBLEM_DESCRIPTIONS = {
    400: "Bad request: `invalid_json`, or the route's own code (`invalid_password`, `token_invalid`, `token_expired`).",
    401: "Not signed in: `unauthorized`, `token_expired`, `invalid_credentials` or `token_reused`.",
    403: "Refused: `forbidden`, `csrf_failed` (cookie auth without X-CSRF-Token) or `account_disabled`.",
    404: "`not_found`: it does not exist, or it is not yours.",
    409: "`conflict` with the current state (or `email_taken`, `already_completed`).",
    413: "`payload_too_large`: the body is over 1 MiB.",
    415: "`unsupported_media_type`: send the body as application/json.",
    422: "`validation_error`: `errors` lists each field (a dotted path) with its message.",
    429: "`rate_limited`, `account_locked` or `quota_exceeded`; retry after `Retry-After` seconds.",
    502: "`llm_error` or `upstream_error`: a service we depend on failed.",
    503: "`service_unavailable` (the database), `llm_not_configured` or `sandbox_unavailable`.",
    504: "`llm_timeout`: the AI model did not answer in time.",
}
STRING = {"type": "string"}
INTEGER = {"type": "integer"}
# Headers many responses carry are declared once, under `components.headers`.
SHARED_HEADERS = {
    "X-Request-ID": {
        "description": "The request's id: echoed when the client sent a sane one, else generated.",
        "required": True,
        "schema": STRING,
    },
    "Retry-After": {"description": "Seconds to wait before retrying.", "required": True, "schema": INTEGER},
    "RateLimit-Limit": {"description": "Requests allowed in the window.", "schema": INTEGER},
    "RateLimit-Remaining": {"description": "Requests left in the window.", "schema": INTEGER},
    "RateLimit-Reset": {"description": "Seconds until the window resets.", "schema": INTEGER},
}
HEADER_REFS = {name: {"$ref": f"#/components/headers/{name}"} for name in SHARED_HEADERS}
PROBLEM_HEADERS = {
    429: {name: HEADER_REFS[name] for name in SHARED_HEADERS if name != "X-Request-ID"},
}
SIGN_IN_COOKIES_HEADER = {
    "description": f"Sets `{ACCESS_COOKIE}` and `{REFRESH_COOKIE}` (httpOnly) and `{CSRF_COOKIE}` (readable), "
    "`SameSite=Lax`, `Secure` outside development. Each refresh rotates all three.",
    "schema": STRING,
}


async def reject_impossible_ids() -> None:
    """An `<int:...>` id above what an id column holds cannot exist: 404, like any unknown id, instead of
    an integer the database driver cannot bind (a 500). A `before_request` hook, registered after the
    middleware's so the answer carries the request id."""
    if request.view_args and any(isinstance(value, int) and value > MAX_ID for value in request.view_args.values()):
        raise NotFound()


def problem_responses(*statuses: int) -> Callable[[T], T]:
    """Document the problem statuses a route gives beyond those its declarations imply (e.g. 409, 429)."""
    unknown = set(statuses) - PROBLEM_DESCRIPTIONS.keys()
    if unknown:
        raise ValueError(f"no description for problem statuses {sorted(unknown)}")

    def decorator(func: T) -> T:
        setattr(func, PROBLEMS_ATTRIBUTE, getattr(func, PROBLEMS_ATTRIBUTE, frozenset()) | set(statuses))
        return func

    return decorator


def no_content(func: T) -> T:
    """Document a 204 answer without a body."""
    setattr(func, NO_CONTENT_ATTRIBUTE, True)
    return func


def redirects(description: str) -> Callable[[T], T]:
    """Document a 302 answer with a `Location` header and no body; such a route never answers 422."""

    def decorator(func: T) -> T:
        setattr(func, REDIRECT_ATTRIBUTE, description)
        return func

    return decorator


def alternative_content(status: int, media_type: str, description: str) -> Callable[[T], T]:
    """Document a body in another media type (CSV, an event stream) for `status`, besides any JSON one."""

    def decorator(func: T) -> T:
        alternatives = [*getattr(func, ALTERNATIVES_ATTRIBUTE, ()), (status, media_type, description)]
        setattr(func, ALTERNATIVES_ATTRIBUTE, alternatives)
        return func

    return decorator


def streams_events(model: type[BaseModel], description: str) -> Callable[[T], T]:
    """Document a 200 `text/event-stream` whose events `model` describes (a named component)."""

    def decorator(func: T) -> T:
        setattr(func, EVENT_STREAM_ATTRIBUTE, (model, description))
        return func

    return decorator


def cookie_parameter(name: str, description: str) -> Callable[[T], T]:
    """Document an optional cookie the route reads itself (e.g. the refresh token)."""
    parameter = {
        "name": name,
        "in": "cookie",
        "required": False,
        "description": description,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._~-]{1,512}$"},
    }

    def decorator(func: T) -> T:
        setattr(func, COOKIE_PARAMETERS_ATTRIBUTE, (*getattr(func, COOKIE_PARAMETERS_ATTRIBUTE, ()), parameter))
        return func

    return decorator


def implied_problems(path: str, operation: dict[str, Any], is_redirect: bool) -> set[int]:
    """The problem statuses that follow from how the route is declared."""
    statuses: set[int] = set()
    if operation.get("security"):
        statuses |= {401, 403}
    if "requestBody" in operation:
        statuses |= {400, 413, 415, 422}
    parameters = operation.get("parameters", [])
    if any(parameter["in"] == "path" for parameter in parameters):
        statuses.add(404)
    if not is_redirect and any(parameter["in"] == "query" for parameter in parameters):
        statuses.add(422)
    if path.startswith(API_PREFIX):
        statuses.add(503)
    return statuses


class APIDocument(OpenAPIProvider):
    """quart-schema's provider, completed with the responses described in this module's docstring, and
    shaped for client generators: every body a named component, operation ids from handler names."""

    _components: Components | None = None

    def schema(self) -> dict[str, Any]:
        self._components = Components.of(self._body_models())
        document = super().schema()
        document["components"]["schemas"] = {**document["components"]["schemas"], **self._components.schemas}
        document["components"]["securitySchemes"] = SECURITY_SCHEMES
        document["components"]["headers"] = SHARED_HEADERS
        document["servers"] = SERVERS
        return document

    def _body_models(self) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
        """Every request and response model of the documented routes, plus the problem and event bodies."""
        pairs: set[tuple[type[BaseModel], JsonSchemaMode]] = {(Problem, "serialization")}
        for rule in self.generate_rules():
            func = self._app.view_functions[rule.endpoint]
            request_data = getattr(func, QUART_SCHEMA_REQUEST_ATTRIBUTE, None)
            if request_data is not None and is_model(request_data[0]):
                pairs.add((request_data[0], "validation"))
            for model, _ in getattr(func, QUART_SCHEMA_RESPONSE_ATTRIBUTE, {}).values():
                if is_model(model):
                    pairs.add((model, "serialization"))
            if (stream := getattr(func, EVENT_STREAM_ATTRIBUTE, None)) is not None:
                pairs.add((stream[0], "serialization"))
        return sorted(pairs, key=lambda pair: (pair[0].__module__, pair[0].__qualname__, pair[1]))

    def components(self) -> Components:
        if self._components is None:
            self._components = Components.of(self._body_models())
        return self._components

    def operation_id(self, method: str, path: str, func: Callable) -> str | None:
        """The handler's name (or an explicit `operation_id`): `<verb>_<resource>`, unique across the app."""
        return getattr(func, QUART_SCHEMA_OPERATION_ID_ATTRIBUTE, func.__name__)

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if "enum" in parameter["schema"]:  # `any(...)` keeps its items in a set: one order for every process
            parameter["schema"]["enum"] = sorted(parameter["schema"]["enum"])
        if isinstance(converter, IntegerConverter):
            parameter["schema"].update(minimum=0, maximum=MAX_ID)
        return parameter

    def build_querystring_parameters(self, model: type) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """An optional query parameter is left out, never sent as `null`: its schema is not nullable."""
        parameters, definitions = super().build_querystring_parameters(model)
        for parameter in parameters:
            parameter["schema"].pop("title", None)  # the parameter's name says it
            if not parameter.get("required"):
                parameter["schema"] = without_null(parameter["schema"])
        return parameters, definitions

    def build_request_body(self, model: type, source: DataSource) -> tuple[dict[str, Any], dict[str, Any]]:
        """A named component; required when its model has a required field (otherwise it may be left out)."""
        ref = self.components().refs.get((model, "validation")) if source == DataSource.JSON else None
        if ref is None:
            return super().build_request_body(model, source)
        required = bool(self.components().resolve(ref).get("required"))
        return {"content": {"application/json": {"schema": ref}}, "required": required}, {}

    def build_response_object(self, model: type, headers_model: type | None) -> tuple[dict[str, Any], dict[str, Any]]:
        ref = self.components().refs.get((model, "serialization"))
        if ref is None or headers_model is not None:
            return super().build_response_object(model, headers_model)
        # The model's own docstring (`inspect.getdoc` would inherit pydantic's BaseModel one).
        description = inspect.cleandoc(model.__doc__) if model.__doc__ else f"A `{self.components().name(ref)}`."
        return {"content": {"application/json": {"schema": ref}}, "description": description}, {}

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        declared: frozenset[int] = getattr(func, PROBLEMS_ATTRIBUTE, frozenset())
        redirect = getattr(func, REDIRECT_ATTRIBUTE, None)
        response_models = getattr(func, QUART_SCHEMA_RESPONSE_ATTRIBUTE, {})
        for path, methods in paths.items():
            for method, operation in methods.items():
                operation["security"] = security_for(method, operation.get("security"))
                operation["parameters"] = [*operation["parameters"], *getattr(func, COOKIE_PARAMETERS_ATTRIBUTE, ())]
                responses = dict(operation["responses"])
                if getattr(func, NO_CONTENT_ATTRIBUTE, False):
                    responses[204] = {"description": "Done; no content."}
                if redirect is not None:
                    location = {"description": "Where the browser goes next.", "required": True, "schema": STRING}
                    responses[302] = {"description": redirect, "headers": {"Location": location}}
                for status, media_type, description in getattr(func, ALTERNATIVES_ATTRIBUTE, ()):
                    response = responses.setdefault(status, {"description": description, "content": {}})
                    response["content"] = {**response.get("content", {}), media_type: {"schema": STRING}}
                if (stream := getattr(func, EVENT_STREAM_ATTRIBUTE, None)) is not None:
                    events = self.components().refs[(stream[0], "serialization")]
                    responses[200] = event_stream_response(events, stream[1])
                for status, (model, _) in response_models.items():
                    if model is TokenPayload:
                        responses[status].setdefault("headers", {})["Set-Cookie"] = SIGN_IN_COOKIES_HEADER
                for status in implied_problems(path, operation, redirect is not None) | declared:
                    responses[status] = problem_response(status)
                for response in responses.values():
                    fix_headers(response)
                operation["responses"] = dict(sorted(responses.items()))
        return paths, components


def security_for(method: str, schemes: list[dict[str, list[str]]] | None) -> list[dict[str, list[str]]]:
    """Explicit everywhere: `[]` on public operations; cookie auth on an unsafe method needs the CSRF header too."""
    if not schemes:
        return []
    if method.upper() in SAFE_METHODS:
        return list(schemes)
    return [{**scheme, CSRF_SCHEME: []} if COOKIE_SCHEME in scheme else scheme for scheme in schemes]


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, null]` (and a `null` default) as plain `X`, keeping the description and other keywords."""
    options = [option for option in schema.get("anyOf", ()) if option != {"type": "null"}]
    if "anyOf" not in schema or len(options) == len(schema["anyOf"]):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf" and not (key == "default" and value is None)}
    return {**options[0], **rest} if len(options) == 1 else {**rest, "anyOf": options}


def event_stream_response(ref: dict[str, str], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            EVENT_STREAM_MEDIA_TYPE: {
                "schema": {
                    "type": "string",
                    "description": f"Server-Sent Events; each is described by {ref['$ref'].rsplit('/', 1)[1]}.",
                },
                EVENT_SCHEMA_EXTENSION: ref,
            }
        },
        "headers": {"Cache-Control": {"description": "`no-cache`: every event is new.", "schema": STRING}},
    }


def problem_response(status: int) -> dict[str, Any]:
    headers = dict(PROBLEM_HEADERS.get(status, {}))
    return {
        "description": f"{HTTPStatus(status).phrase}. {PROBLEM_DESCRIPTIONS[status]}",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        "headers": headers,
    }


def fix_headers(response: dict[str, Any]) -> None:
    """Every response carries X-Request-ID. quart-schema files response headers under `content`, where a
    media type belongs: move them to the response's `headers`."""
    headers = response.setdefault("headers", {})
    misplaced = response.get("content", {}).pop("headers", None)
    if misplaced:
        headers.update(misplaced)
    headers["X-Request-ID"] = HEADER_REFS["X-Request-ID"]
