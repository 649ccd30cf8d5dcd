"""`@require_user` and `@require_role(...)`: who is calling, checked before the handler runs.

Bearer tokens win over cookies. With cookie authentication, unsafe methods also need the
double-submit CSRF header. Both decorators keep `functools.wraps` (quart-schema reads the wrapped
function's attributes) and declare the security requirement in the OpenAPI document.

Authentication is on every request's path, so it is one query outside any transaction (no BEGIN and
COMMIT round trips on PostgreSQL) and no ORM session. The user it loads joins the request's session
once the handler asks for both (`current_user()`, `get_session()`), so a handler that changes it saves
as before, and one that only reads it opens no session. For a `@read_only` handler the connection of
the check stays with the request: its reads use it too (one checkout, not two; db.share_read_connection).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from quart import current_app, g, request
from quart_schema import security_scheme
from sqlalchemy import inspect

from backend.config import Settings
from backend.db import is_read_only, read_connection, share_read_connection
from backend.errors import Forbidden, Unauthorized
from backend.models import User
from backend.security import TokenExpired, TokenInvalid, csrf_token_is_for, decode_access_token, tokens_match
from backend.services import auth as auth_service
from backend.services.llm_gateway import BudgetedLLM

P = ParamSpec("P")
R = TypeVar("R")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE = "access_token", "refresh_token", "csrf_token"
# Set by an OAuth callback for its exchange code only (a MAC of it): the code signs in no other browser.
EXCHANGE_COOKIE = "oauth_exchange"
CSRF_HEADER = "X-CSRF-Token"
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"cookieAuth": []}]


class CSRFFailed(Forbidden):
    code, detail = "csrf_failed", "Send the csrf_token cookie's value in the X-CSRF-Token header."


def settings() -> Settings:
    return current_app.config["SETTINGS"]


def user_llm() -> BudgetedLLM:
    """The app's LLM on behalf of the signed-in user: every call is checked against, and counted in, their
    daily token budget (services/llm_gateway.py). Handlers pass this on, never the bare provider."""
    return BudgetedLLM(
        current_app.extensions["llm"],
        current_app.extensions["db_session_factory"],
        settings(),
        g.user.id,
        current_app.extensions["cache"],
    )


def current_user() -> User:
    """The signed-in user, part of the request's session (changes to it are saved with the request).

    Without a session yet, none is opened: the user joins it when the handler first asks for one
    (`get_session()`), so a handler that only reads the user costs no ORM session at all."""
    user: User = g.user
    if not g.get("user_in_session"):
        g.user_in_session = True
        session = g.get("db_session")
        if session is None:
            g.setdefault("attach_to_session", []).append(user)
        elif (loaded := session.identity_map.get(inspect(user).key)) is not None:
            user = g.user = loaded  # the handler loaded this row through the session already: that is the user
        else:
            session.add(user)
    return user


def check_csrf() -> None:
    if request.method not in SAFE_METHODS and not tokens_match(
        request.cookies.get(CSRF_COOKIE), request.headers.get(CSRF_HEADER)
    ):
        raise CSRFFailed()


def bearer_token() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use `Authorization: Bearer <access token>`.")
    return token.strip()


async def authenticate_request(*, share_connection: bool = False) -> User:
    token = bearer_token()
    by_cookie = token is None
    if token is None:
        token = request.cookies.get(ACCESS_COOKIE)
        if not token:
            raise Unauthorized()
        check_csrf()  # cookies ride along on cross-site requests; bearer tokens do not
    try:
        claims = decode_access_token(settings(), token)
    except TokenExpired:
        raise auth_service.AccessTokenExpired() from None
    except TokenInvalid:
        raise Unauthorized("The access token is not valid.") from None
    if (
        by_cookie
        and request.method not in SAFE_METHODS
        and not csrf_token_is_for(settings(), claims.session_id, request.headers.get(CSRF_HEADER))
    ):
        raise CSRFFailed()  # header and cookie agree, but on a token this session was never given
    if share_connection:  # only for a verified token: a flood of bad ones checks nothing out
        await share_read_connection()
    async with read_connection(fetch_only=True) as connection:  # authenticate() reads through db.fetch
        user = await auth_service.authenticate(connection, claims)
    g.user = user
    g.auth_session_id = claims.session_id
    return user


def require_user(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    shares_connection = is_read_only(func)  # the check and a read-only handler's reads: one connection

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        await authenticate_request(share_connection=shares_connection)
        return await func(*args, **kwargs)

    return security_scheme(SECURITY)(wrapper)


def require_role(*roles: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Signed in with one of `roles`; anyone else is 403 `forbidden` before anything else happens."""

    def decorator(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            user = await authenticate_request()
            if user.role not in roles:
                raise Forbidden("Your role does not allow this.")
            return await func(*args, **kwargs)

        return security_scheme(SECURITY)(wrapper)

    return decorator
