"""One exception tree and one renderer: every error leaves as RFC 9457 problem details.

Services raise `AppError` subclasses; routing, body and validation errors from Quart, Werkzeug and
quart-schema are translated here, and anything unexpected becomes a generic 500 whose traceback goes
to the log only, tied to the response by its request id.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any

import structlog
from pydantic import ValidationError as PydanticValidationError
from quart import Quart, Response, current_app, g, json
from quart_schema import RequestSchemaValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError

CREDENTIALS_IN_URL = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^@\s/]+@")
log = structlog.get_logger(__name__)
# The id of the request being served, set by the request middleware (backend/middleware/request_context.py).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

PROBLEM_CONTENT_TYPE = "application/problem+json"

# Werkzeug's HTTP errors (routing, body limits, ...) and the code each one carries in our contract.
HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}
HTTP_ERROR_DETAILS = {
    404: "The requested resource was not found.",
    405: "The method is not allowed for the requested URL.",
    413: "The request body exceeds the size limit.",
    415: "Send the request body as application/json.",
}


class AppError(Exception):
    """An error with a place in the API contract: status, stable code, human detail."""

    status_code: int = 400
    code: str = "bad_request"
    detail: str = "The request could not be processed."
    keep_changes: bool = False  # commit the request's work anyway (e.g. a revocation behind a 401)

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, str]] | None = None,
    ) -> None:
        self.detail = detail or self.detail
        self.code = code or self.code
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None
        super().__init__(self.detail)


class BadRequest(AppError):
    pass


class InvalidJSON(BadRequest):
    code = "invalid_json"
    detail = "The request body is not valid JSON."


class Unauthorized(AppError):
    status_code, code, detail = 401, "unauthorized", "Authentication is required."


class Forbidden(AppError):
    status_code, code, detail = 403, "forbidden", "You are not allowed to do this."


class NotFound(AppError):
    status_code, code, detail = 404, "not_found", "The requested resource was not found."


class Conflict(AppError):
    status_code, code, detail = 409, "conflict", "The request conflicts with the current state."


class UnsupportedMediaType(AppError):
    status_code, code, detail = 415, "unsupported_media_type", HTTP_ERROR_DETAILS[415]


class ValidationFailed(AppError):
    status_code, code, detail = 422, "validation_error", "The request is not valid."


class RateLimited(AppError):
    status_code, code, detail = 429, "rate_limited", "Too many requests; try again later."


class UpstreamError(AppError):
    status_code, code, detail = 502, "upstream_error", "An upstream service failed."


class ServiceUnavailable(AppError):
    status_code, code, detail = 503, "service_unavailable", "The service is temporarily unavailable."


class GatewayTimeout(AppError):
    status_code, code, detail = 504, "upstream_timeout", "An upstream service did not answer in time."


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": REQUEST_ID.get(),
    }
    if errors is not None:
        body["errors"] = list(errors)
    response = current_app.response_class(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    response.headers.update(headers or {})
    return response


def validation_errors(error: PydanticValidationError) -> list[dict[str, str]]:
    """`[{field, message}]` with dotted paths; never the input, which may be a password."""
    return [
        {"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
        for item in error.errors(include_url=False, include_input=False, include_context=False)
    ]


def render_app_error(error: AppError) -> Response:
    if error.keep_changes:
        g.keep_changes = True  # read by the session hook in db.py
    return problem_response(error.status_code, error.code, error.detail, errors=error.errors, headers=error.headers)


def render_schema_validation_error(error: RequestSchemaValidationError) -> Response:
    cause = error.validation_error
    errors = validation_errors(cause) if isinstance(cause, PydanticValidationError) else []
    return problem_response(422, "validation_error", ValidationFailed.detail, errors=errors)


def render_http_exception(error: HTTPException) -> Response:
    original = getattr(error, "original_exception", None)
    if isinstance(error, InternalServerError) and isinstance(original, Exception):
        # Quart wraps what escaped a handler or an after_request hook; render the real cause.
        return render_exception(original)
    status = error.code or 500
    code = HTTP_ERROR_CODES.get(status, "bad_request" if status < 500 else "internal_error")
    detail = HTTP_ERROR_DETAILS.get(status, HTTPStatus(status).description if status < 500 else "")
    headers = {}
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(sorted(error.valid_methods))  # type: ignore[attr-defined]
    return problem_response(status, code, detail or "The request could not be processed.", headers=headers)


def database_error_message(error: BaseException) -> str:
    """What the driver said, for the log: never SQLAlchemy's text (it quotes the statement and its
    parameters, which may be tokens or hashes), with credentials in any URL masked, and short."""
    orig = getattr(error, "orig", None)
    message = str(orig if orig is not None else error) or type(error).__name__
    return CREDENTIALS_IN_URL.sub(r"\1***@", message.splitlines()[0] if message else message)[:300]


def render_database_unavailable(error: Exception) -> Response:
    log.error("database.unavailable", error_type=type(error).__name__, error=database_error_message(error))
    return problem_response(
        503, "service_unavailable", "The database is unavailable; try again shortly.", headers={"Retry-After": "5"}
    )


def render_unexpected(error: Exception) -> Response:
    # The one place a traceback is written: to the log, with the request id bound by the middleware.
    log.exception("request.unhandled_exception", exc_info=error)
    return problem_response(500, "internal_error", "An unexpected error occurred; quote the request id to support.")


def render_exception(error: Exception) -> Response:
    """Anything that is not one of ours: a database outage is a 503, the rest a generic 500."""
    if isinstance(error, AppError):
        return render_app_error(error)
    if is_connection_error(error):
        return render_database_unavailable(error)
    return render_unexpected(error)


def is_connection_error(error: Exception) -> bool:
    """Errors that mean the database is gone (not a bad query): worth a 503 rather than a 500."""
    if isinstance(error, PoolTimeoutError | ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(error, OperationalError) and not _is_sqlite_busy(error):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def _is_sqlite_busy(error: OperationalError) -> bool:
    return "database is locked" in str(error.orig)


def register_error_handlers(app: Quart) -> None:
    app.register_error_handler(AppError, render_app_error)
    app.register_error_handler(RequestSchemaValidationError, render_schema_validation_error)
    app.register_error_handler(HTTPException, render_http_exception)
    app.register_error_handler(Exception, render_exception)
