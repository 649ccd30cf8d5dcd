"""The OpenAPI document: quart-schema's, plus every answer a route can give that is not its success body.

quart-schema documents what `validate_response` / `document_response` declare. Everything else a route can
answer comes from this module, so clients (and the schemathesis run in CI) see the whole contract:

- problem details (`application/problem+json`, the `Problem` schema) for the errors a route's own
  declarations imply — signed in (401, 403), a JSON body (400, 413, 415, 422), validated query
  parameters (422), path parameters (404), anything under `/api/v1` (503 when the database is away) —
  plus the statuses a route names itself with `@problem_responses(409, 429, ...)`;
- `@no_content` (204, no body) and `@redirects` (302 with `Location`, no body);
- the `X-Request-ID` header on every response, `Retry-After` and `RateLimit-*` on 429.

Redirect routes (browser sign-in flows) answer a bad query with a redirect, never a 422.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from quart import request
from quart_schema.conversion import model_schema
from quart_schema.openapi import OpenAPIProvider
from quart_schema.validation import DataSource
from werkzeug.routing import BaseConverter, IntegerConverter, Rule

from backend.errors import NotFound
from backend.schemas.common import MAX_ID, Problem

T = TypeVar("T", bound=Callable[..., Any])

PROBLEMS_ATTRIBUTE = "_codementor_problem_statuses"
NO_CONTENT_ATTRIBUTE = "_codementor_no_content"
REDIRECT_ATTRIBUTE = "_codementor_redirect"
ALTERNATIVES_ATTRIBUTE = "_codementor_alternative_content"
PROBLEM_MEDIA_TYPE = "application/problem+json"
API_PREFIX = "/api/v1/"

# What each status means across the API, with the codes API.md gives it.
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
REQUEST_ID_HEADER = {
    "description": "The request's id: echoed when the client sent a sane one, else generated.",
    "required": True,
    "schema": STRING,
}
RETRY_AFTER_HEADER = {"description": "Seconds to wait before retrying.", "required": True, "schema": INTEGER}
PROBLEM_HEADERS = {
    429: {
        "Retry-After": RETRY_AFTER_HEADER,
        "RateLimit-Limit": {"description": "Requests allowed in the window.", "schema": INTEGER},
        "RateLimit-Remaining": {"description": "Requests left in the window.", "schema": INTEGER},
        "RateLimit-Reset": {"description": "Seconds until the window resets.", "schema": INTEGER},
    },
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
    """quart-schema's provider, completed with the responses described in this module's docstring."""

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if "enum" in parameter["schema"]:  # `any(...)` keeps its items in a set: one order for every process
            parameter["schema"]["enum"] = sorted(parameter["schema"]["enum"])
        if isinstance(converter, IntegerConverter):
            parameter["schema"].update(minimum=0, maximum=MAX_ID)
        return parameter

    def build_request_body(self, model: type, source: DataSource) -> tuple[dict[str, Any], dict[str, Any]]:
        """A body is required when its model has a required field; otherwise it may be left out (= `{}`)."""
        request_body, components = super().build_request_body(model, source)
        request_body["required"] = any(
            bool(media["schema"].get("required")) for media in request_body["content"].values()
        )
        return request_body, components

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        problem = model_schema(Problem, schema_mode="serialization")
        definitions = problem.pop("$defs", {})
        document["components"]["schemas"].update(definitions)
        document["components"]["schemas"]["Problem"] = problem
        return document

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        declared = getattr(func, PROBLEMS_ATTRIBUTE, frozenset())
        redirect = getattr(func, REDIRECT_ATTRIBUTE, None)
        for path, methods in paths.items():
            for operation in methods.values():
                responses = dict(operation["responses"])
                if getattr(func, NO_CONTENT_ATTRIBUTE, False):
                    responses[204] = {"description": "Done; no content."}
                if redirect is not None:
                    location = {"description": "Where the browser goes next.", "required": True, "schema": STRING}
                    responses[302] = {"description": redirect, "headers": {"Location": location}}
                for status, media_type, description in getattr(func, ALTERNATIVES_ATTRIBUTE, ()):
                    response = responses.setdefault(status, {"description": description, "content": {}})
                    response["content"] = {**response.get("content", {}), media_type: {"schema": STRING}}
                for status in implied_problems(path, operation, redirect is not None) | declared:
                    responses[status] = problem_response(status)
                for response in responses.values():
                    fix_headers(response)
                operation["responses"] = dict(sorted(responses.items()))
        return paths, components


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
    headers["X-Request-ID"] = REQUEST_ID_HEADER
