"""Sign in with GitHub or Google: the provider list, the redirect out, and the callback back in.

The browser never sees a token in a URL: the callback hands the SPA a one-time code (60 seconds) that
it trades for tokens at `POST /auth/oauth/exchange`. Every failure of the callback is the same redirect
to the SPA's login page; what went wrong is logged (`auth.oauth_failed` with a reason category).
"""

from __future__ import annotations

from urllib.parse import urlencode

import structlog
from quart import Blueprint, Response, current_app, request, url_for
from quart.blueprints import BlueprintSetupState
from quart_schema import document_querystring, tag_blueprint, validate_response

from backend.api.guards import EXCHANGE_COOKIE, settings
from backend.api.openapi import problem_responses, redirects
from backend.cache import get_cache
from backend.db import discard_changes, get_session
from backend.errors import NotFound
from backend.integrations.oauth import PROVIDER_NAMES, Provider, Providers
from backend.middleware.rate_limit import rate_limit
from backend.schemas.auth import OAuthCallbackQuery, OAuthProvider, OAuthProviderList, OAuthStartQuery
from backend.security import browser_binding
from backend.services import oauth as oauth_service
from backend.services.auth.one_time import OAUTH_EXCHANGE_TTL

bp = Blueprint("oauth", __name__)
tag_blueprint(bp, ["auth"])

BINDING_COOKIE = "oauth_binding"
PROVIDERS_EXTENSION = "oauth_providers"
MOUNT_PATH_CONFIG = "OAUTH_MOUNT_PATH"
# Only the provider names match: `/oauth/exchange` and friends stay clear of these routes (a GET there is a 405).
PROVIDER_SEGMENT = f"<any({', '.join(PROVIDER_NAMES)}):provider>"

log = structlog.get_logger(__name__)
security_log = structlog.get_logger("backend.security")


@bp.record_once
def _create_providers(state: BlueprintSetupState) -> None:
    """Build the provider clients once per app; our own URLs depend on where the blueprint is mounted."""
    config = state.app.config["SETTINGS"]
    mount_path = state.url_prefix or ""
    state.app.config[MOUNT_PATH_CONFIG] = mount_path
    state.app.extensions[PROVIDERS_EXTENSION] = Providers(
        config, callback_url=lambda name: f"{config.backend_url}{mount_path}/{name}/callback"
    )


def providers() -> Providers:
    return current_app.extensions[PROVIDERS_EXTENSION]


def mount_path() -> str:
    return current_app.config[MOUNT_PATH_CONFIG]


def configured_provider(name: str) -> Provider:
    provider = providers().get(name)
    if provider is None:
        raise NotFound("This sign-in provider is not available.")
    return provider


@bp.get("/providers")
@validate_response(OAuthProviderList)
async def list_oauth_providers() -> OAuthProviderList:
    """The sign-in providers this server is configured for (items only).

    `authorize_url` is where the SPA sends the browser to start signing in."""
    base_url = f"{settings().backend_url}{mount_path()}"
    return OAuthProviderList(
        items=[OAuthProvider(name=name, authorize_url=f"{base_url}/{name}") for name in providers().names()]
    )


@bp.get(f"/{PROVIDER_SEGMENT}")
@rate_limit("oauth_start")
@document_querystring(OAuthStartQuery)
@redirects("To the provider's consent page; or, when the flow cannot start, to the SPA's login page.")
@problem_responses(429)
async def start_oauth(provider: str) -> Response:
    """Start signing in: 302 to the provider's consent page, with state and PKCE.

    `redirect_to` (a path on the SPA) is handed back after the sign-in; anything else is ignored.
    404 `not_found` for a provider that is not configured."""
    client = configured_provider(provider)
    try:
        flow = await oauth_service.start(get_cache(), client, redirect_to=request.args.get("redirect_to"))
    except oauth_service.OAuthFailed as failure:
        security_log.warning("auth.oauth_failed", provider=provider, reason=failure.reason)
        return to_login_page()
    except Exception:  # e.g. the cache is down; a browser waits on this answer too
        log.exception("auth.oauth_failed", provider=provider, reason="internal_error")
        return to_login_page()
    return to_provider(flow, cookie=BINDING_COOKIE, path=mount_path())


@bp.get(f"/{PROVIDER_SEGMENT}/callback")
@document_querystring(OAuthCallbackQuery)
@redirects("To `FRONTEND_URL/auth/callback?code=…&provider=…`; on any failure `FRONTEND_URL/login?error=oauth_failed`.")
async def finish_oauth(provider: str) -> Response:
    """Where the provider sends the browser back: 302 to the SPA with a one-time code.

    Success: `FRONTEND_URL/auth/callback?code=…&provider=…&redirect_to=…`; trade the code within 60
    seconds at `POST /auth/oauth/exchange`. Any failure: `FRONTEND_URL/login?error=oauth_failed`."""
    client = configured_provider(provider)
    try:
        signed_in = await oauth_service.finish(
            get_session(),
            settings(),
            get_cache(),
            client,
            code=request.args.get("code"),
            state=request.args.get("state"),
            error=request.args.get("error"),
            binding=request.cookies.get(BINDING_COOKIE),
        )
    except oauth_service.OAuthFailed as failure:
        security_log.warning("auth.oauth_failed", provider=provider, reason=failure.reason)
        return to_login_page()
    except Exception:  # a browser waits on this answer: the login page beats a JSON 500
        log.exception("auth.oauth_failed", provider=provider, reason="internal_error")
        return to_login_page()
    log.info("auth.oauth_login", provider=provider, user_id=signed_in.user.id, is_new_user=signed_in.is_new_user)
    query = urlencode({"code": signed_in.exchange_code, "provider": provider, "redirect_to": signed_in.redirect_to})
    response = flow_over(found(f"{settings().frontend_url}/auth/callback?{query}"))
    # The code in that URL is worth something only with this cookie: a link carrying it to another browser
    # (login CSRF) signs nobody in.
    response.set_cookie(
        EXCHANGE_COOKIE,
        browser_binding(settings(), signed_in.exchange_code),
        max_age=int(OAUTH_EXCHANGE_TTL.total_seconds()),
        httponly=True,
        secure=settings().is_production,
        samesite="Lax",
        path=url_for("auth.exchange_oauth_code"),
    )
    return response


def found(location: str) -> Response:
    return Response("", status=302, headers={"Location": location})


def to_provider(flow: oauth_service.StartedFlow, *, cookie: str, path: str) -> Response:
    """302 to the provider's consent page, with the cookie that binds the flow to this browser (`path`:
    only the callback gets it back)."""
    response = found(flow.authorize_url)
    response.set_cookie(
        cookie,
        flow.binding,
        max_age=oauth_service.FLOW_TTL_SECONDS,
        httponly=True,
        secure=settings().is_production,
        samesite="Lax",  # sent on the provider's top-level redirect back to us, not on cross-site subrequests
        path=path,
    )
    return response


def to_login_page() -> Response:
    """The one answer to every failed sign-in: the reason is in the log, not in the URL. Whatever the
    failed attempt wrote is rolled back, although a redirect is a success status."""
    discard_changes()
    return flow_over(found(f"{settings().frontend_url}/login?error=oauth_failed"))


def flow_over(response: Response) -> Response:
    """The flow has ended either way: the browser's binding cookie has nothing left to bind."""
    response.delete_cookie(
        BINDING_COOKIE, path=mount_path(), secure=settings().is_production, httponly=True, samesite="Lax"
    )
    return response
