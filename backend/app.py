"""`create_app()`: the one place that wires configuration, middleware, the database and the routes."""

from __future__ import annotations

import gc

import structlog
from quart import Quart
from quart.json.provider import DefaultJSONProvider
from quart_schema import QuartSchema, Tag

from backend import __version__
from backend.api import register_blueprints
from backend.api.openapi import APIDocument
from backend.cache import create_cache
from backend.config import Settings, load_settings
from backend.db import create_engine, create_session_factory, register_session_hooks
from backend.errors import register_error_handlers
from backend.integrations.email import create_email_sender
from backend.integrations.llm import create_llm
from backend.integrations.sandbox import create_sandbox, languages
from backend.jobs import JOBS_EXTENSION, announce_through, create_jobs_backend
from backend.jobs import register as register_job
from backend.logging import configure_logging
from backend.middleware import register_middleware
from backend.middleware.body import MAX_BODY_BYTES, JSONRequest
from backend.middleware.responses import serialize_models_directly
from backend.services import reviews
from backend.services.llm_gateway import BudgetedLLM
from backend.services.submissions import fail_abandoned as fail_abandoned_submissions

log = structlog.get_logger(__name__)

OPENAPI_TAGS: list[Tag | dict] = [
    {"name": "health", "description": "Service root, liveness and readiness."},
    {"name": "auth", "description": "Registration, login, sessions, email flows and OAuth."},
    {"name": "users", "description": "Profiles, onboarding, progress and achievements."},
    {"name": "exercises", "description": "Daily exercises, hints and graded submissions."},
    {"name": "chat", "description": "Conversations with the AI tutor."},
    {"name": "github", "description": "Linked repositories and AI code reviews."},
]


def register_job_kinds() -> None:
    """Every background job kind and its handlers: the server and `python -m backend worker` call this."""
    register_job(reviews.JOB_KIND, reviews.run_review, on_failure=reviews.mark_failed)


def create_app(settings: Settings | None = None) -> Quart:
    settings = settings or load_settings()
    configure_logging(settings)

    app = Quart(__name__, static_folder=None)
    # Werkzeug answers `/api/v1//x` with an HTML 308 to an absolute URL built from the Host header (http,
    # whatever the scheme): a 404 problem instead, like any other unknown path. Before any rule is added.
    app.url_map.merge_slashes = False
    app.request_class = JSONRequest
    app.config.update(
        SETTINGS=settings,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        RATE_LIMITS_ENABLED=settings.rate_limits_enabled,
        LLM_PROVIDER=settings.llm_provider,
        JSON_SORT_KEYS=False,
    )
    QuartSchema(
        app,
        info={
            "title": "CodeMentor API",
            "version": __version__,
            "description": (
                "The REST API behind CodeMentor, the AI coding tutor. Errors are RFC 9457 problem details "
                "(`application/problem+json`). No string in a body or query may contain U+0000 (NUL): 422."
            ),
        },
        tags=OPENAPI_TAGS,
        openapi_provider_class=APIDocument,  # adds the problem, 204 and 302 responses of every route
        swagger_ui_path=None,  # our own /docs serves Swagger UI from local files (api/docs.py)
        redoc_ui_path=None,
        scalar_ui_path=None,
    )
    assert isinstance(app.json, DefaultJSONProvider)  # quart-schema's provider extends it
    app.json.sort_keys = False  # fields in the order the schemas declare
    serialize_models_directly(app)
    register_middleware(app, settings)
    register_error_handlers(app)
    register_blueprints(app)

    engine = create_engine(settings)
    cache = create_cache(settings.redis_url)
    app.extensions["db_engine"] = engine
    session_factory = app.extensions["db_session_factory"] = create_session_factory(engine)
    app.extensions["cache"] = cache
    app.extensions["email"] = create_email_sender(settings)
    llm = app.extensions["llm"] = create_llm(settings)
    sandbox = app.extensions["sandbox"] = create_sandbox(settings)
    languages.graded()  # which toolchains are installed: detected once per process, before any request
    register_job_kinds()
    jobs = app.extensions[JOBS_EXTENSION] = create_jobs_backend(
        settings, session_factory, llm=llm, user_llm=BudgetedLLM, cache=cache
    )
    announce_through(session_factory, jobs)
    # Registered last so its after_request runs first: the transaction ends before anything is logged.
    register_session_hooks(app)

    @app.before_serving
    async def _started() -> None:
        if settings.secret_key_generated:
            log.warning(
                "config.secret_key_generated",
                detail="SECRET_KEY is not set; a random one is used and tokens end with the process",
            )
        for setting in settings.missing_llm_keys():  # production refuses this at start (config.py)
            log.warning("config.llm_key_missing", setting=setting, detail="the provider will answer 401; set the key")
        log.info(
            "app.started",
            environment=settings.environment,
            database=engine.dialect.name,
            cache=cache.backend,
            llm=settings.llm_provider,
        )
        await jobs.start()
        await fail_abandoned_submissions(session_factory)
        if settings.environment != "test":  # test runs build hundreds of apps; freezing would pin them all
            # Everything imported and built at start-up lives for the process: keep it out of the GC's
            # generations so collections stay short (tail latency).
            gc.collect()
            gc.freeze()

    @app.after_serving
    async def _stopped() -> None:
        await jobs.stop()  # first: running jobs still use the engine, the LLM and the cache
        await llm.close()
        await sandbox.close()
        await cache.close()
        await engine.dispose()
        log.info("app.stopped")

    return app
