"""Accounts and sessions: registration, login, tokens, cookies with CSRF, email flows and OAuth."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from quart import Blueprint, after_this_request, current_app, g, request
from quart.typing import ResponseTypes
from quart_schema import tag_blueprint, validate_request, validate_response
from sqlalchemy.ext.asyncio import AsyncSession

from backend.api.guards import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    EXCHANGE_COOKIE,
    REFRESH_COOKIE,
    current_user,
    require_user,
    settings,
)
from backend.api.openapi import cookie_parameter, no_content, problem_responses
from backend.cache import get_cache
from backend.db import after_commit, get_session
from backend.errors import Unauthorized
from backend.integrations.email import Email
from backend.middleware.rate_limit import client_ip, rate_limit
from backend.models import User
from backend.schemas.auth import (
    CodeRequest,
    EmailRequest,
    LoginRequest,
    Message,
    PasswordChangeRequest,
    PasswordResetConfirm,
    RefreshRequest,
    RegisterRequest,
    SessionList,
    SessionRead,
    TokenPayload,
    TokenRequest,
    VerifyEmailResult,
)
from backend.schemas.users import UserRead
from backend.services import auth as auth_service
from backend.services import oauth as oauth_service

log = structlog.get_logger(__name__)

bp = Blueprint("auth", __name__)
tag_blueprint(bp, ["auth"])

REFRESH_COOKIE_PATH = "/api/v1/auth"
EMAIL_WORK_DELAY_SECONDS = 0.02
EMAIL_ACCEPTED = "If an account exists for that address, an email is on its way."


def client() -> auth_service.Client:
    return auth_service.Client(ip=client_ip(), user_agent=request.headers.get("User-Agent"))


def send_after_commit(email: Email | None) -> None:
    if email is not None:
        sender = current_app.extensions["email"]
        after_commit(lambda: sender.send(email))


def email_in_background(write: Callable[[AsyncSession], Awaitable[Email | None]]) -> None:
    """Run `write` (look the address up, make a token, write the email: or nothing for an unknown
    address) after the answer has gone, in a session of its own, then send what it wrote. The answer
    then costs the same whether or not an account exists: no timing tells them apart."""
    factory, sender = current_app.extensions["db_session_factory"], current_app.extensions["email"]

    async def run() -> None:
        # Started at once, it would share the event loop with the answer still being written, and the
        # heavier work for a real account would slow that answer down: let the answer leave first.
        await asyncio.sleep(EMAIL_WORK_DELAY_SECONDS)
        try:
            async with factory() as session:
                email = await write(session)
                await session.commit()
            if email is not None:
                await sender.send(email)
        except Exception:  # nobody waits for this answer any more: the log is the only place to say so
            log.exception("auth.email_failed")

    current_app.add_background_task(run)


def signed_in(user: User, tokens: auth_service.IssuedTokens) -> TokenPayload:
    """The token payload, with the browser cookies set on the response that carries it."""
    config = settings()
    secure = config.is_production

    @after_this_request
    async def _set_cookies(response: ResponseTypes) -> ResponseTypes:
        response.set_cookie(
            ACCESS_COOKIE,
            tokens.access_token,
            max_age=config.access_token_ttl_seconds,
            httponly=True,
            secure=secure,
            samesite="Lax",
            path="/",
        )
        response.set_cookie(
            REFRESH_COOKIE,
            tokens.refresh_token,
            max_age=config.refresh_token_ttl_seconds,
            httponly=True,
            secure=secure,
            samesite="Lax",
            path=REFRESH_COOKIE_PATH,
        )
        response.set_cookie(
            CSRF_COOKIE,
            tokens.csrf_token,
            max_age=config.refresh_token_ttl_seconds,
            httponly=False,
            secure=secure,
            samesite="Lax",
            path="/",
        )
        return response

    return TokenPayload(
        user=UserRead.model_validate(user),
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        csrf_token=tokens.csrf_token,
    )


def signed_out() -> None:
    secure = settings().is_production

    @after_this_request
    async def _clear_cookies(response: ResponseTypes) -> ResponseTypes:
        for name, path in ((ACCESS_COOKIE, "/"), (REFRESH_COOKIE, REFRESH_COOKIE_PATH), (CSRF_COOKIE, "/")):
            response.delete_cookie(name, path=path, secure=secure, samesite="Lax", httponly=name != CSRF_COOKIE)
        return response


@bp.post("/register")
@rate_limit("register")
@validate_request(RegisterRequest)
@validate_response(TokenPayload, 201)
@problem_responses(409, 429)
async def register_account(data: RegisterRequest) -> tuple[TokenPayload, int]:
    """Create an account and sign in.

    Sends a verification email. 409 `email_taken`; 422 for a weak password (12–128 characters with
    upper, lower, digit and symbol). Limited to 5 per minute per IP."""
    user, tokens, verification = await auth_service.register(
        get_session(),
        settings(),
        get_cache(),
        email=data.email,
        password=data.password,
        name=data.name,
        client=client(),
    )
    send_after_commit(verification)
    return signed_in(user, tokens), 201


@bp.post("/login")
@rate_limit("login")
@validate_request(LoginRequest)
@validate_response(TokenPayload)
@problem_responses(401, 403, 429)
async def login(data: LoginRequest) -> TokenPayload:
    """Sign in with email and password.

    401 `invalid_credentials` for any wrong combination; 403 `account_disabled`; after 5 failures
    every attempt for 15 minutes is 429 `account_locked` with Retry-After. 10 per minute per IP."""
    user, tokens = await auth_service.login(
        get_session(), settings(), get_cache(), email=data.email, password=data.password, client=client()
    )
    return signed_in(user, tokens)


@bp.post("/refresh")
@cookie_parameter(REFRESH_COOKIE, "The browser's refresh token (path `/api/v1/auth`), used when the body has none.")
@validate_request(RefreshRequest)
@validate_response(TokenPayload)
@problem_responses(401)
async def refresh_tokens(data: RefreshRequest) -> TokenPayload:
    """Exchange a refresh token (body or cookie) for new tokens; the old one stops working.

    401 `token_reused` when a rotated token is presented again: that session is ended."""
    token = data.refresh_token or request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise Unauthorized("Send the refresh token in the body or its cookie.")
    user, tokens = await auth_service.refresh(get_session(), settings(), refresh_token=token, client=client())
    return signed_in(user, tokens)


@bp.post("/logout")
@require_user
@no_content
async def logout() -> tuple[str, int]:
    """End this session and clear the cookies."""
    await auth_service.revoke_sessions(
        get_session(), current_user().id, session_ids=[g.auth_session_id], reason="logout"
    )
    signed_out()
    return "", 204


@bp.post("/logout-all")
@require_user
@no_content
async def logout_everywhere() -> tuple[str, int]:
    """End every session of the signed-in user, on every device."""
    await auth_service.revoke_sessions(get_session(), current_user().id, reason="logout_all")
    signed_out()
    return "", 204


@bp.get("/me")
@require_user
@validate_response(UserRead)
async def get_me() -> UserRead:
    """The signed-in user."""
    return UserRead.model_validate(current_user())


@bp.get("/sessions")
@require_user
@validate_response(SessionList)
async def list_sessions() -> SessionList:
    """The signed-in devices of this account, the current one marked."""
    sessions = await auth_service.list_sessions(get_session(), current_user())
    return SessionList(
        items=[
            SessionRead(
                id=s.id,
                user_agent=s.user_agent,
                ip=s.ip,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                current=s.id == g.auth_session_id,
            )
            for s in sessions
        ]
    )


@bp.delete("/sessions/<int:session_id>")
@require_user
@no_content
async def delete_session(session_id: int) -> tuple[str, int]:
    """Sign out one device. 404 for a session that is not yours."""
    await auth_service.end_session(get_session(), current_user(), session_id)
    return "", 204


@bp.post("/password/change")
@require_user
@rate_limit("password_change")
@validate_request(PasswordChangeRequest)
@validate_response(TokenPayload)
@problem_responses(400, 429)
async def change_password(data: PasswordChangeRequest) -> TokenPayload:
    """Change the password; every other session is ended and this one gets new tokens.

    400 `invalid_password` when the current password is wrong; 429 `rate_limited` past 5 attempts an hour."""
    user = current_user()
    tokens = await auth_service.change_password(
        get_session(),
        settings(),
        user,
        current_password=data.current_password,
        new_password=data.new_password,
        current_session_id=g.auth_session_id,
    )
    return signed_in(user, tokens)


@bp.post("/password-reset")
@rate_limit("password_reset")
@validate_request(EmailRequest)
@validate_response(Message, 202)
@problem_responses(429)
async def request_password_reset(data: EmailRequest) -> tuple[Message, int]:
    """Email a password-reset link valid for one hour.

    The answer is the same whether or not an account exists."""
    config, cache, address = settings(), get_cache(), data.email
    email_in_background(lambda session: auth_service.request_password_reset(session, config, cache, email=address))
    return Message(message=EMAIL_ACCEPTED), 202


@bp.post("/password-reset/confirm")
@validate_request(PasswordResetConfirm)
@validate_response(Message)
@problem_responses(400)
async def confirm_password_reset(data: PasswordResetConfirm) -> Message:
    """Set a new password with the emailed token; every session is ended.

    400 `token_invalid` (unknown or used) or `token_expired`."""
    await auth_service.confirm_password_reset(
        get_session(), settings(), token=data.token, new_password=data.new_password
    )
    return Message(message="Your password has been changed. Sign in with the new one.")


@bp.post("/verify-email")
@validate_request(TokenRequest)
@validate_response(VerifyEmailResult)
@problem_responses(400, 403)
async def verify_email(data: TokenRequest) -> VerifyEmailResult:
    """Confirm the email address with the emailed token.

    200 `{message, user}` on the link's first use; the same link again is 200 `{message}` alone.
    400 `token_invalid` or `token_expired`; 403 `account_disabled`."""
    user = await auth_service.verify_email(get_session(), token=data.token)
    if user is None:
        return VerifyEmailResult(message="Your email address was already confirmed.")
    return VerifyEmailResult(message="Your email address is confirmed.", user=UserRead.model_validate(user))


@bp.post("/resend-verification")
@rate_limit("resend_verification")
@validate_request(EmailRequest)
@validate_response(Message, 202)
@problem_responses(429)
async def resend_verification(data: EmailRequest) -> tuple[Message, int]:
    """Send the verification email again (at most 3 per address per hour, registration's included).

    Always 202 with the same body, whether or not an account exists or its emails ran out; 429 only past a
    per-address-of-the-client limit generous enough for a classroom behind one address."""
    config, cache, address = settings(), get_cache(), data.email
    email_in_background(lambda session: auth_service.resend_verification(session, config, cache, email=address))
    return Message(message=EMAIL_ACCEPTED), 202


@bp.post("/oauth/exchange")
@cookie_parameter(EXCHANGE_COOKIE, "Set by the OAuth callback for its code: the exchange needs it (same browser).")
@validate_request(CodeRequest)
@validate_response(TokenPayload)
@problem_responses(400, 403)
async def exchange_oauth_code(data: CodeRequest) -> TokenPayload:
    """Trade the one-time code from the OAuth redirect for tokens (valid 60 seconds, once).

    Only in the browser the callback redirected: send its `oauth_exchange` cookie (fetch with credentials).
    400 `token_invalid` for an unknown, used or expired code, or one without its browser's cookie."""
    binding = request.cookies.get(EXCHANGE_COOKIE)
    user, tokens = await oauth_service.exchange(
        get_session(), settings(), code=data.code, binding=binding, client=client()
    )
    return signed_in(user, tokens)
