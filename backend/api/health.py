"""Service root, liveness, readiness and metrics: for people and probes (metrics behind METRICS_TOKEN when set)."""

from __future__ import annotations

import contextlib
import hmac
import time
from datetime import UTC, datetime, timedelta

from quart import Blueprint, Response, current_app, request
from quart_schema import document_response, hide, tag_blueprint, validate_response
from sqlalchemy.exc import SQLAlchemyError

from backend import __version__
from backend.errors import Unauthorized
from backend.integrations.llm import status as llm_status
from backend.jobs import count_queued
from backend.metrics import JOBS_QUEUED, render_latest
from backend.schemas.health import Liveness, Readiness, ServiceInfo
from backend.services import health as health_service

bp = Blueprint("health", __name__)
tag_blueprint(bp, ["health"])

STARTED_AT = time.monotonic()
SECURITY_TXT_VALIDITY = timedelta(days=365)  # RFC 9116: Expires at most a year ahead
ROOT = ServiceInfo(name="CodeMentor API", version=__version__, api="/api/v1", docs="/docs", openapi="/openapi.json")
SECURITY_POLICY = """CodeMentor vulnerability disclosure policy

Report a vulnerability privately to the Contact in /.well-known/security.txt, with the steps to reproduce
it and what an attacker gains. We acknowledge within 3 working days, keep you informed, fix confirmed
issues as fast as their severity calls for, and credit you if you wish.

Please test only against your own accounts, never read or change other people's data, do not degrade
the service (no denial of service, no spam), and give us a reasonable time to fix before disclosure.
Good-faith research within these rules will not be pursued legally.
"""


@bp.get("/")
@validate_response(ServiceInfo)
async def get_root() -> ServiceInfo:
    """Describe the service and where its API and documentation live."""
    return ROOT


@bp.get("/health")
@document_response(Liveness)
async def get_health() -> Response:
    """Liveness: the process is up and serving.

    Cheap and dependency-free, for load balancers and restart policies."""
    # A ready Response skips quart-schema's per-response conversion of a dict (a pydantic
    # TypeAdapter each time): this route is hit by every probe, so it stays as lean as it can.
    uptime = round(time.monotonic() - STARTED_AT, 3)
    body = current_app.json.dumps({"status": "ok", "version": __version__, "uptime_seconds": uptime})
    return current_app.response_class(f"{body}\n", content_type="application/json")


@bp.get("/health/ready")
@validate_response(Readiness, 200)
@validate_response(Readiness, 503)
async def get_readiness() -> tuple[Readiness, int]:
    """Readiness: the database answers, Redis answers when configured, migrations are at head, and the
    sandbox runner answers (`sandbox.status`: isolated, unisolated in development, or unavailable).

    200 `degraded` while only Redis is down (the app serves without it); 503 with `status: unavailable`
    and the failing check otherwise. `llm` reports the provider and its last failure, never unready."""
    settings = current_app.config["SETTINGS"]
    llm = llm_status.report(settings.llm_provider, missing_key="LLM_API_KEY" in settings.missing_llm_keys())
    readiness = await health_service.readiness(
        current_app.extensions["db_engine"], current_app.extensions["cache"], llm, current_app.extensions["sandbox"]
    )
    return Readiness.model_validate(readiness), 503 if readiness.status == "unavailable" else 200


@bp.get("/metrics")
@hide
async def get_metrics() -> Response:
    """Prometheus exposition of request, LLM and sandbox metrics.

    With METRICS_TOKEN set (required in production) only `Authorization: Bearer <METRICS_TOKEN>` sees
    them: route names, error rates and LLM spending are not for the public."""
    token = current_app.config["SETTINGS"].metrics_token
    if token is not None:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        is_bearer = scheme.lower() == "bearer"
        if not (hmac.compare_digest(sent.strip().encode(), token.get_secret_value().encode()) and is_bearer):
            raise Unauthorized("Metrics need `Authorization: Bearer <METRICS_TOKEN>`.")
    with contextlib.suppress(SQLAlchemyError, OSError, TimeoutError):  # a database outage must not hide the rest
        JOBS_QUEUED.set(await count_queued(current_app.extensions["db_session_factory"]))
    body, content_type = render_latest()
    return Response(body, content_type=content_type)


@bp.get("/.well-known/security.txt")
@hide
async def get_security_txt() -> Response:
    """RFC 9116: where to report a vulnerability."""
    settings = current_app.config["SETTINGS"]
    expires = (datetime.now(UTC) + SECURITY_TXT_VALIDITY).replace(microsecond=0).isoformat()
    policy = settings.security_policy_url or f"{settings.backend_url}/.well-known/security-policy"
    lines = [
        f"Contact: {settings.security_contact}",
        f"Expires: {expires.replace('+00:00', 'Z')}",
        f"Policy: {policy}",
        "Preferred-Languages: en",
        f"Canonical: {settings.backend_url}/.well-known/security.txt",
    ]
    return Response("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@bp.get("/.well-known/security-policy")
@hide
async def get_security_policy() -> Response:
    """The disclosure policy security.txt points to when SECURITY_POLICY_URL is not set."""
    return Response(SECURITY_POLICY, content_type="text/plain; charset=utf-8")
