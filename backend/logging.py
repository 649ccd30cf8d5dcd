"""structlog set-up: readable console lines in development, one JSON object per line in production.

Request context (`request_id`, method, path) is bound in contextvars by the request middleware, so every
line written while serving a request carries it. Standard-library loggers (Hypercorn, SQLAlchemy,
asyncio) are rendered by the same processors so the output stays one format.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor

from backend.config import Settings

# Keys whose values must never reach a log line, whatever a caller passes by mistake.
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "token",
        "access_token",
        "refresh_token",
        "secret",
        "secret_key",
        "authorization",
        "cookie",
        "api_key",
        "csrf_token",
        "code_verifier",
    }
)
REDACTED = "[redacted]"
# Libraries whose DEBUG output carries payloads: aiosqlite logs every statement with its parameters
# (password hashes, token digests, messages), the LLM SDKs log whole requests (prompts, code), hpack
# logs HTTP/2 headers (Authorization), PyGithub every request and answer (repository code, review bodies).
# They stay at WARNING whatever LOG_LEVEL says.
PAYLOAD_LOGGERS = ("aiosqlite", "asyncpg", "openai", "anthropic", "httpx", "httpcore", "hpack", "urllib3", "github")


# Tracebacks as data, without each frame's local variables (structlog's default shows them): frames hold the
# Settings (database and Redis URLs with their passwords), request bodies with passwords, emails with their
# links. File, line and function are enough to find the bug; the request id ties it to the request.
TRACEBACKS = structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False))


def redact_sensitive(_: Any, __: str, event_dict: EventDict) -> EventDict:
    for key in SENSITIVE_KEYS.intersection(event_dict):
        event_dict[key] = REDACTED
    return event_dict


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Log to `stream` (standard output by default; a command whose stdout is data passes stderr)."""
    stream = stream or sys.stdout
    level = logging.getLevelNamesMapping()[settings.effective_log_level]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_sensitive,
    ]
    renderer: Processor
    if settings.effective_log_format == "json":
        shared.append(TRACEBACKS)
        renderer = structlog.processors.JSONRenderer()
    else:
        # Rich's tracebacks (when rich is installed) show each frame's locals unless told not to.
        exceptions = structlog.dev.RichTracebackFormatter(show_locals=False) if structlog.dev.rich else None
        renderer = structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=exceptions or structlog.dev.plain_traceback
        )

    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # Our access log replaces Hypercorn's; SQL echo stays off unless asked for with LOG_LEVEL=DEBUG.
    logging.getLogger("hypercorn.access").setLevel(logging.WARNING)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
