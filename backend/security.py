"""Passwords, access tokens, opaque tokens, CSRF and encryption at rest.

Pure functions and small classes with no knowledge of requests or the database; `services/auth/`
puts them together.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
import jwt
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from backend.config import Settings

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "codementor"
JWT_AUDIENCE = "codementor-api"
# bcrypt reads at most 72 bytes. Every password is first condensed to a fixed 44-byte digest, so a
# 100-character password counts in full instead of being silently cut. The key only domain-separates;
# it is not a secret (rotating SECRET_KEY must not invalidate every password).
PASSWORD_PREHASH_KEY = b"codementor/password/v1"
OPAQUE_TOKEN_BYTES = 32
CSRF_NONCE_BYTES = 18
PASSWORD_THREAD_NICENESS = 10


# --- passwords -------------------------------------------------------------------------------------


def _prehash(password: str) -> bytes:
    digest = hmac.new(PASSWORD_PREHASH_KEY, password.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest)


def hash_password_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password_sync(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), password_hash.encode("ascii"))
    except ValueError:  # a malformed stored hash never matches
        return False


def _lower_thread_priority() -> None:
    # Linux applies nice per thread: bcrypt threads then yield the CPU to the event loop's thread, so a
    # burst of logins uses every core without making other requests wait behind it.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PASSWORD_THREAD_NICENESS)


# bcrypt's own pool, sized to the cores (more threads only queue on them) and kept apart from the
# default executor that other blocking calls share.
_password_executor = ThreadPoolExecutor(
    max_workers=os.cpu_count() or 1, thread_name_prefix="bcrypt", initializer=_lower_thread_priority
)


async def hash_password(password: str, rounds: int) -> str:
    """bcrypt in a worker thread: at cost 12 it takes ~200 ms, which must never block the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_password_executor, hash_password_sync, password, rounds)


async def verify_password(password: str, password_hash: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(
        _password_executor, verify_password_sync, password, password_hash
    )


class DummyHash:
    """A real hash to check against for unknown emails, so they take as long as known ones."""

    _hashes: dict[int, str] = {}

    @classmethod
    def get(cls, rounds: int) -> str:
        if rounds not in cls._hashes:
            cls._hashes[rounds] = hash_password_sync(secrets.token_urlsafe(16), rounds)
        return cls._hashes[rounds]


# --- access tokens (JWT) ---------------------------------------------------------------------------


class TokenInvalid(Exception):
    pass


class TokenExpired(TokenInvalid):
    pass


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    session_id: int
    jti: str
    expires_at: datetime


def create_access_token(settings: Settings, user_id: int, session_id: int, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "sid": session_id,
        "jti": uuid.uuid4().hex,
        "type": "access",
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=settings.access_token_ttl_seconds),
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
    }
    return jwt.encode(claims, _signing_key(settings), algorithm=JWT_ALGORITHM)


JWT_LEEWAY_SECONDS = 5
# Access tokens this process has verified, with their claims and expiry. A client sends the same token
# with every request of its lifetime, and PyJWT's full check is ~15% of a one-row authenticated request
# (docs/PERFORMANCE.md). Only a byte-identical token under the same signing key hits; its expiry is
# checked again on every use with the same leeway, and the session row is still read on every request,
# so logout and revocation stay immediate. First in, first out past the bound.
VERIFIED_TOKENS_MAX = 10_000
_verified: dict[tuple[str, str], tuple[AccessClaims, float]] = {}


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    """Verify signature (HS256 only: `alg: none` and key confusion are refused), time, issuer, audience."""
    key = (_signing_key(settings), token)
    known = _verified.get(key)
    if known is not None:
        claims, expires = known
        if expires <= datetime.now(UTC).timestamp() - JWT_LEEWAY_SECONDS:  # PyJWT's own test of `exp`
            del _verified[key]
            raise TokenExpired
        return claims
    claims, expires = _verify_access_token(key[0], token)
    if len(_verified) >= VERIFIED_TOKENS_MAX:
        del _verified[next(iter(_verified))]
    _verified[key] = claims, expires
    return claims


def _verify_access_token(signing_key: str, token: str) -> tuple[AccessClaims, float]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            signing_key,
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            issuer=JWT_ISSUER,
            options={"require": ["sub", "sid", "jti", "type", "iat", "nbf", "exp", "iss", "aud"]},
            leeway=JWT_LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenExpired from error
    except jwt.PyJWTError as error:
        raise TokenInvalid from error
    if claims["type"] != "access" or not isinstance(claims["sid"], int) or not str(claims["sub"]).isdigit():
        raise TokenInvalid
    access = AccessClaims(
        user_id=int(claims["sub"]),
        session_id=claims["sid"],
        jti=claims["jti"],
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )
    return access, float(claims["exp"])


def _signing_key(settings: Settings) -> str:
    assert settings.secret_key is not None  # Settings always has one (generated in development)
    return settings.secret_key.get_secret_value()


# --- opaque tokens (refresh, email links, one-time codes) and CSRF --------------------------------


def new_opaque_token() -> str:
    return secrets.token_urlsafe(OPAQUE_TOKEN_BYTES)


def token_digest(token: str) -> str:
    """What we store instead of the token: a stolen database yields nothing usable."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_csrf_token(settings: Settings, session_id: int) -> str:
    """A CSRF token bound to its session (a signed double submit): a nonce and its MAC with the session's id.
    Comparing the header with the cookie alone lets whoever can plant a cookie for our host choose both."""
    nonce = secrets.token_urlsafe(CSRF_NONCE_BYTES)
    return f"{nonce}.{_csrf_mac(settings, session_id, nonce)}"


def csrf_token_is_for(settings: Settings, session_id: int, token: str | None) -> bool:
    """Whether `token` was issued (by `new_csrf_token`) for the session `session_id`."""
    nonce, _, mac = (token or "").partition(".")
    if not nonce or not mac:
        return False
    return hmac.compare_digest(mac.encode("utf-8"), _csrf_mac(settings, session_id, nonce).encode("utf-8"))


def browser_binding(settings: Settings, code: str) -> str:
    """The cookie value that ties a one-time code to the browser it was handed to: a MAC of the code, so a
    code carried to another browser (a link) is worth nothing there."""
    message = f"oauth-exchange\0{code}".encode("utf-8", "surrogatepass")
    digest = hmac.new(_signing_key(settings).encode("utf-8"), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _csrf_mac(settings: Settings, session_id: int, nonce: str) -> str:
    message = f"csrf\0{session_id}\0{nonce}".encode("utf-8", "surrogatepass")
    digest = hmac.new(_signing_key(settings).encode("utf-8"), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def tokens_match(expected: str | None, presented: str | None) -> bool:
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))


# --- encryption at rest (OAuth and GitHub tokens) -------------------------------------------------


class TokenCipher:
    """Fernet with rotation: the first key of TOKEN_ENCRYPTION_KEY encrypts, all of them decrypt."""

    def __init__(self, settings: Settings) -> None:
        if settings.token_encryption_key is not None:
            keys = [key.strip() for key in settings.token_encryption_key.get_secret_value().split(",") if key.strip()]
        else:
            # Development only (production refuses to start without a key): derived from SECRET_KEY.
            digest = hashlib.sha256(b"codementor/token-encryption/" + _signing_key(settings).encode()).digest()
            keys = [base64.urlsafe_b64encode(digest).decode()]
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except InvalidToken as error:
            raise TokenInvalid("cannot decrypt with the configured keys") from error
