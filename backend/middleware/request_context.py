"""Request ids, the access log line and request metrics.

Every request gets an id (the client's `X-Request-ID` when it is sane, else a new one), bound into the
logging context so every line written while serving it carries the id, method and path.
"""

from __future__ import annotations

import re
import secrets
import time
from functools import cache

import structlog
from prometheus_client import Counter, Histogram
from quart import Quart, Response, g, request

from backend.metrics import REQUEST_DURATION, REQUESTS

REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Labels come from a fixed set so clients cannot grow the metrics: 404s are not labelled by their path,
# nor invented methods by their name.
UNMATCHED_ROUTE = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_id_from(header: str | None) -> str:
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(16)  # 32 hex characters like a uuid4, at a fifth of the cost


@cache
def _metrics_for(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    # labels() hashes and looks up its arguments on every call; the set of (method, route, status)
    # is small and fixed (routes are templates, unmatched paths share one label), so keep the children.
    return REQUESTS.labels(method, route, str(status)), REQUEST_DURATION.labels(method, route)


def register_request_context(app: Quart) -> None:
    # Bound once, after logging is configured: the module-level lazy proxy would build a new logger on
    # every call, a measurable share of a `GET /health`.
    log = structlog.get_logger("backend.access").bind()

    @app.before_request
    async def _start_request() -> None:
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        g.request_started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id, method=request.method, path=request.path)

    @app.after_request
    async def _finish_request(response: Response) -> Response:
        request_id = g.pop("request_id", None) or request_id_from(None)
        started = g.pop("request_started", None)
        response.headers.add(REQUEST_ID_HEADER, request_id)
        duration = time.perf_counter() - started if started is not None else 0.0
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
        status = response.status_code
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        requests, durations = _metrics_for(method, route, status)
        requests.inc()
        durations.observe(duration)
        level = log.warning if status >= 500 else log.info
        level("request.completed", status=status, duration_ms=round(duration * 1000, 2))
        return response
