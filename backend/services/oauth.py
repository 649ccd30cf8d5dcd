"""Signing in with GitHub or Google: the redirect out, and the account the callback signs into.

A flow's secrets (`state`, the PKCE verifier, the OIDC nonce) and where the SPA wants to land stay
server-side in the cache for ten minutes and are claimed exactly once. The browser that started the flow
also holds a random binding (a cookie, set by the API layer) that must come back with the callback: a
callback URL planted in someone else's browser then fails instead of signing them into the planter's
account (login CSRF).

Accounts are found by (provider, provider user id) first, then by an email the provider has verified,
else created. Provider tokens are stored encrypted, never in plain.

The callback hands the SPA a one-time exchange code (60 seconds, single use), never a token: the SPA
trades it for a session with `exchange`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.cache import Cache
from backend.config import Settings
from backend.db import utcnow
from backend.integrations.oauth import Identity, OAuthProviderError, Provider
from backend.models import OAuthAccount, User
from backend.security import TokenCipher, browser_binding, token_digest, tokens_match
from backend.services.auth import (
    AccountDisabled,
    Client,
    IssuedTokens,
    OneTimeTokenExpired,
    OneTimeTokenInvalid,
    create_oauth_exchange_code,
    normalise_email,
    redeem_oauth_exchange_code,
    revoke_sessions,
    start_session,
)
from backend.text import strip_html

FLOW_TTL_SECONDS = 600
MAX_REDIRECT_LENGTH = 2000
MAX_NAME_LENGTH = 100
MAX_AVATAR_URL_LENGTH = 2048
MAX_SCOPES_LENGTH = 500
DEFAULT_REDIRECT = "/"

security_log = structlog.get_logger("backend.security")


class OAuthFailed(Exception):
    """The sign-in cannot go on; `reason` is a category for the log (the user sees one generic failure)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StartedFlow:
    authorize_url: str
    binding: str  # for the browser's cookie; only its digest is kept server-side


@dataclass(frozen=True)
class Flow:
    provider: str
    code_verifier: str
    nonce: str
    binding_digest: str
    redirect_to: str


@dataclass(frozen=True)
class SignedIn:
    user: User
    redirect_to: str
    is_new_user: bool
    exchange_code: str  # for the SPA, which trades it for tokens (`exchange`)


def safe_redirect_path(value: str | None) -> str:
    """`value` if it is a path on the SPA (one leading "/", no scheme or host), else "/".

    Anything that a browser could read as another origin is dropped: `//host`, `/\\host` (browsers treat
    a backslash as a slash), schemes, control characters."""
    if not value or len(value) > MAX_REDIRECT_LENGTH or not value.startswith("/"):
        return DEFAULT_REDIRECT
    if "//" in value or "\\" in value or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return DEFAULT_REDIRECT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return DEFAULT_REDIRECT
    return value


def _flow_key(state: str) -> str:
    return f"oauth:flow:{token_digest(state)}"


# --- start -----------------------------------------------------------------------------------------


async def start(cache: Cache, provider: Provider, *, redirect_to: str | None) -> StartedFlow:
    """A new flow: its secrets go to the cache, the browser gets the authorize URL and a binding."""
    state, code_verifier, nonce, binding = (secrets.token_urlsafe(32) for _ in range(4))
    try:
        url = await provider.authorize_url(state=state, code_verifier=code_verifier, nonce=nonce)
    except OAuthProviderError as error:
        raise OAuthFailed(error.reason) from error
    flow = Flow(
        provider=provider.name,
        code_verifier=code_verifier,
        nonce=nonce,
        binding_digest=token_digest(binding),
        redirect_to=safe_redirect_path(redirect_to),
    )
    await cache.set(_flow_key(state), json.dumps(asdict(flow)), ttl=FLOW_TTL_SECONDS)
    return StartedFlow(authorize_url=url, binding=binding)


# --- finish ----------------------------------------------------------------------------------------


async def finish(
    session: AsyncSession,
    settings: Settings,
    cache: Cache,
    provider: Provider,
    *,
    code: str | None,
    state: str | None,
    error: str | None,
    binding: str | None,
) -> SignedIn:
    """The user the callback signs in: claim the flow, trade the code, link or create the account, then
    issue the one-time code the SPA exchanges for tokens.

    Nothing touches the database until the provider has answered, so no transaction waits on the network."""
    flow, identity = await authenticate(cache, provider, code=code, state=state, error=error, binding=binding)
    user, is_new_user = await _sign_in(session, settings, provider.name, identity)
    exchange_code = await create_oauth_exchange_code(session, user)
    return SignedIn(user=user, redirect_to=flow.redirect_to, is_new_user=is_new_user, exchange_code=exchange_code)


async def exchange(
    session: AsyncSession, settings: Settings, *, code: str, binding: str | None, client: Client
) -> tuple[User, IssuedTokens]:
    """A new session for the exchange code of a finished sign-in (valid 60 seconds, once), in the browser the
    callback gave the code's `binding` cookie (`browser_binding`): a code sent to another browser (login CSRF:
    the victim would work signed in as the attacker) is refused, and stays usable where it belongs.

    A late code is as invalid as an unknown or used one (`token_invalid`): either way the SPA can only
    start signing in again. An account disabled since the callback gets no session."""
    if not tokens_match(browser_binding(settings, code), binding):
        raise OneTimeTokenInvalid()
    try:
        user = await redeem_oauth_exchange_code(session, code)
    except OneTimeTokenExpired:
        raise OneTimeTokenInvalid() from None
    if not user.is_active:
        raise AccountDisabled()
    return user, await start_session(session, settings, user, client)


async def authenticate(
    cache: Cache, provider: Provider, *, code: str | None, state: str | None, error: str | None, binding: str | None
) -> tuple[Flow, Identity]:
    """Claim the flow and trade the code: who the provider says is at the keyboard, and what they granted."""
    flow = await _claim_flow(cache, provider.name, state, binding)
    if error:
        raise OAuthFailed("denied" if error == "access_denied" else "provider_error")
    if not code:
        raise OAuthFailed("code_missing")
    try:
        identity = await provider.fetch_identity(code=code, code_verifier=flow.code_verifier, nonce=flow.nonce)
    except OAuthProviderError as failure:
        raise OAuthFailed(failure.reason) from failure
    return flow, identity


async def _claim_flow(cache: Cache, provider_name: str, state: str | None, binding: str | None) -> Flow:
    """The flow `state` names, used up; unknown, expired, replayed or from another browser fails."""
    if not state:
        raise OAuthFailed("state_missing")
    key = _flow_key(state)
    stored = await cache.get(key)
    if stored is None:
        raise OAuthFailed("state_invalid")
    flow = Flow(**json.loads(stored))
    if flow.provider != provider_name:
        raise OAuthFailed("state_invalid")
    if not tokens_match(flow.binding_digest, token_digest(binding) if binding else None):
        raise OAuthFailed("browser_mismatch")
    # get-then-delete is not atomic on Redis; an atomic counter makes sure one callback wins.
    if await cache.incr(f"{key}:claimed", FLOW_TTL_SECONDS) != 1:
        raise OAuthFailed("state_invalid")
    await cache.delete(key)
    return flow


async def _sign_in(
    session: AsyncSession, settings: Settings, provider_name: str, identity: Identity
) -> tuple[User, bool]:
    account = await session.scalar(
        select(OAuthAccount).where(
            OAuthAccount.provider == provider_name, OAuthAccount.provider_user_id == identity.provider_user_id
        )
    )
    if account is not None:
        user = await session.get_one(User, account.user_id)
        is_new_user = False
    else:
        user, is_new_user = await _user_to_link(session, identity)
    if not user.is_active:
        raise OAuthFailed("account_disabled")
    if account is None:
        if not is_new_user:
            await _take_over_unverified_account(session, user)
        account = OAuthAccount(user_id=user.id, provider=provider_name, provider_user_id=identity.provider_user_id)
        session.add(account)
    store_grant(account, identity, TokenCipher(settings))
    user.last_login_at = utcnow()
    await session.flush()
    return user, is_new_user


async def _user_to_link(session: AsyncSession, identity: Identity) -> tuple[User, bool]:
    """The existing account with the identity's verified email, else a new account."""
    if identity.email is None:
        raise OAuthFailed("email_missing")
    email = normalise_email(identity.email)
    existing = await session.scalar(select(User).where(User.email == email))
    if existing is not None:
        if not identity.email_verified:
            # Linking on an address nobody proved to own would hand the account to whoever typed it.
            raise OAuthFailed("email_unverified")
        return existing, False
    user = User(
        email=email,
        password_hash=None,
        name=_display_name(identity, email),
        avatar_url=_avatar_url(identity.avatar_url),
        email_verified=identity.email_verified,
    )
    session.add(user)
    await session.flush()
    return user, True


async def _take_over_unverified_account(session: AsyncSession, user: User) -> None:
    """Linking to an account whose email was never verified: the provider has just proved who owns the
    address, and whoever chose the password had not. Drop the password and end its sessions, or an
    attacker who registered the victim's address first would keep a way in (pre-account hijacking)."""
    if user.email_verified:
        return
    user.email_verified = True
    if user.password_hash is not None:
        user.password_hash = None
        await revoke_sessions(session, user.id, reason="oauth_email_proven")
        security_log.warning("auth.oauth_unverified_password_dropped", user_id=user.id)


def store_grant(account: OAuthAccount, identity: Identity, cipher: TokenCipher) -> None:
    account.access_token_encrypted = cipher.encrypt(identity.access_token)
    # Google sends a refresh token only on first consent; a later sign-in must not forget it.
    if identity.refresh_token is not None:
        account.refresh_token_encrypted = cipher.encrypt(identity.refresh_token)
    account.login = identity.login[:255] if identity.login else None
    account.email = normalise_email(identity.email)[:320] if identity.email else None
    account.scopes = identity.scopes[:MAX_SCOPES_LENGTH] if identity.scopes else None


def _display_name(identity: Identity, email: str) -> str:
    """The provider's name for the user, as plain text like any name a user types (a GitHub profile name
    is whatever its owner wrote, markup included)."""
    for candidate in (identity.name, identity.login, email.split("@", 1)[0], email):
        try:
            name = strip_html(candidate) if candidate else ""
        except ValueError:  # nested encodings past any real name: try the next candidate
            continue
        if name:
            return name[:MAX_NAME_LENGTH].strip()
    return "Student"


def _avatar_url(url: str | None) -> str | None:
    if url and len(url) <= MAX_AVATAR_URL_LENGTH and urlsplit(url).scheme in {"https", "http"}:
        return url
    return None
