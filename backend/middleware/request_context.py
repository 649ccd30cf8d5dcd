"""Request ids, the access log line, request metrics and the headers every response carries, as one
ASGI middleware around the app (instead of a chain of Quart before/after-request hooks: it sees the raw
ASGI messages, so it adds headers to byte pairs and runs no hook machinery per request).

Every request gets an id (the client's `X-Request-ID` when it is sane, else a new one), bound into the
logging context so every line written while serving it carries the id, method and path. The security
headers and CORS come from backend/middleware/security_headers.py and cors.py, computed at start-up.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from functools import cache
from typing import Any

import structlog
from prometheus_client import Counter, Histogram

from backend.config import Settings
from backend.errors import REQUEST_ID
from backend.metrics import REQUEST_DURATION, REQUESTS
from backend.middleware.body import ROUTE_KEY  # the matched route template, put into the scope by JSONRequest
from backend.middleware.cors import Cors
from backend.middleware.security_headers import response_headers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Labels come from a fixed set so clients cannot grow the metrics: 404s are not labelled by their path,
# nor invented methods by their name.
UNMATCHED_ROUTE = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
FRAMING_HEADERS = {b"content-length": 1, b"transfer-encoding": 2}
BOTH_FRAMINGS = 3


def request_id_from(header: str | None) -> str:
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(16)  # 32 hex characters like a uuid4, at a fifth of the cost


@cache
def _metrics_for(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    # labels() hashes and looks up its arguments on every call; the set of (method, route, status)
    # is small and fixed (routes are templates, unmatched paths share one label), so keep the children.
    return REQUESTS.labels(method, route, str(status)), REQUEST_DURATION.labels(method, route)


class RequestMiddleware:
    """Ids, context, headers, metrics and the access log of every HTTP request, in one ASGI layer."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.api_headers, self.docs_headers = response_headers(settings)
        self.cors = Cors(settings)
        # Bound once, after logging is configured: the module-level lazy proxy would build a new logger
        # on every call, a measurable share of a `GET /health`.
        self.log = structlog.get_logger("backend.access").bind()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sent_id = origin = None
        framings = 0
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                sent_id = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
            elif name in FRAMING_HEADERS:
                framings |= FRAMING_HEADERS[name]
        request_id = request_id_from(sent_id)
        method, path = scope["method"], scope["path"]
        REQUEST_ID.set(request_id)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id, method=method, path=path)
        added = [(b"x-request-id", request_id.encode()), *self.cors.headers(origin, method, scope["headers"])]
        if framings == BOTH_FRAMINGS:
            # Content-Length and Transfer-Encoding both: the server reads the chunks, a proxy in front may
            # have read the length, so whatever follows on this connection may be another request smuggled
            # past the proxy. RFC 9112 6.3: close the connection after responding.
            added.append((b"connection", b"close"))
        is_docs = path.startswith("/docs")
        status: int | None = None  # set when the response starts; logged and counted when its body ends
        outcome = "client_gone"  # unless the last body chunk is sent (or the app fails): a stream cut short

        async def send_with_headers(message: Message) -> None:
            nonlocal status, outcome
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers += added
                if is_docs:
                    headers += self.docs_headers
                else:
                    headers += self.api_headers
                    if not any(name == b"cache-control" for name, _ in headers):
                        headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                outcome = "complete"

        # A response is timed until its last byte: for a chat stream that is when the stream ends.
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            outcome = "error"
            raise
        finally:
            self._finished(scope, method, status or 500, started, outcome)

    def _finished(self, scope: Scope, method: str, status: int, started: float, outcome: str) -> None:
        duration = time.perf_counter() - started
        route = scope.get(ROUTE_KEY) or UNMATCHED_ROUTE
        requests, durations = _metrics_for(method if method in KNOWN_METHODS else "OTHER", route, status)
        requests.inc()
        durations.observe(duration)
        level = self.log.warning if status >= 500 or outcome == "error" else self.log.info
        level("request.completed", status=status, duration_ms=round(duration * 1000, 2), outcome=outcome)
