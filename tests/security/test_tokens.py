"""JWT attacks beyond tests/api/test_auth.py's (which covers alg none, a wrong key, nbf, wrong aud/iss,
`type: refresh`, a refresh token as access token, a swapped signature, another user's sub, expiry, refresh
reuse and revocation at logout). Here: algorithm confusion, missing claims and header tricks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from quart.testing import QuartClient

from backend import security
from tests.conftest import TEST_SECRET_KEY, make_settings
from tests.helpers import bearer, register
from tests.security.support import problem_code


def claims_of(tokens: dict[str, Any], **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    claims.update(iat=now, nbf=now, exp=now + timedelta(minutes=5))
    claims.update(changes)
    return claims


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, default=str).encode()).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], alg: str) -> str:
    payload = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    return f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(payload)}."


def hmac_signed(claims: dict[str, Any], key: bytes) -> str:
    """HS256 by hand: PyJWT itself refuses a PEM as an HMAC secret, an attacker's tool would not."""
    payload = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.filterwarnings("ignore:The HMAC key is")  # the attacker's HS384/HS512 tokens, on purpose
async def test_forged_tokens_are_refused_whatever_the_algorithm_trick(client: QuartClient) -> None:
    tokens = await register(client)
    claims = claims_of(tokens)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    attempts = {
        "RS256 signed with an attacker's key": jwt.encode(claims, rsa_key, algorithm="RS256"),
        "HS256 keyed with the RSA public key (confusion)": hmac_signed(claims, public_pem),
        "HS512 with the real secret": jwt.encode(claims, TEST_SECRET_KEY, algorithm="HS512"),
        "HS384 with the real secret": jwt.encode(claims, TEST_SECRET_KEY, algorithm="HS384"),
        "alg None": unsigned(claims, "None"),
        "alg NONE": unsigned(claims, "NONE"),
        "alg none with the real signature kept": unsigned(claims, "none") + tokens["access_token"].rsplit(".", 1)[1],
        "kid pointing elsewhere": jwt.encode(
            claims, "attacker-key-that-is-long-enough-0123456789", algorithm="HS256", headers={"kid": "../../dev/null"}
        ),
        "jku to an attacker's keys": jwt.encode(
            claims, rsa_key, algorithm="RS256", headers={"jku": "https://evil.example/jwks.json"}
        ),
        "empty": "",
        "garbage": "not.a.jwt",
    }
    for name, token in attempts.items():
        response = await client.get("/api/v1/users/me", headers=bearer(token) if token else {"Authorization": "Bearer"})
        assert response.status_code == 401, name
        assert problem_code(await response.get_json()) == "unauthorized", name


async def test_tokens_missing_a_required_claim_are_refused(client: QuartClient) -> None:
    tokens = await register(client)
    for claim in ("sub", "sid", "jti", "type", "iat", "nbf", "exp", "iss", "aud"):
        claims = claims_of(tokens)
        del claims[claim]
        token = jwt.encode(claims, TEST_SECRET_KEY, algorithm="HS256")
        response = await client.get("/api/v1/users/me", headers=bearer(token))
        assert response.status_code == 401, claim


async def test_well_signed_tokens_with_odd_claims_are_refused(client: QuartClient) -> None:
    tokens = await register(client)
    claims = claims_of(tokens)
    for name, changes in {
        "sid as a string": {"sid": str(claims["sid"])},
        "sub not a number": {"sub": "1 OR 1=1"},
        "sid of a session that does not exist": {"sid": claims["sid"] + 1000},
        "audience list without ours": {"aud": ["other-api"]},
        "far-future expiry of a revoked session": {"exp": datetime.now(UTC) + timedelta(days=3650)},
    }.items():
        if name.startswith("far-future"):
            await client.post("/api/v1/auth/logout", headers=bearer(tokens))
        token = jwt.encode(claims_of(tokens, **changes), TEST_SECRET_KEY, algorithm="HS256")
        response = await client.get("/api/v1/users/me", headers=bearer(token))
        assert response.status_code == 401, name


def test_a_remembered_token_still_expires_and_stays_bound_to_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verified tokens are remembered per process (docs/PERFORMANCE.md): a remembered one is refused once it
    expires (by our clock; PyJWT's real clock would still accept it), and under another key it is refused."""
    settings = make_settings()
    issued = datetime.now(UTC) - timedelta(seconds=settings.access_token_ttl_seconds - 60)  # a minute left
    token = security.create_access_token(settings, 7, 9, now=issued)
    assert security.decode_access_token(settings, token).session_id == 9
    assert security.decode_access_token(settings, token).session_id == 9  # remembered
    with pytest.raises(security.TokenInvalid):
        security.decode_access_token(make_settings(secret_key=f"another-{TEST_SECRET_KEY}"), token)

    later = datetime.now(UTC) + timedelta(minutes=2)

    class Later(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return later

    monkeypatch.setattr(security, "datetime", Later)
    with pytest.raises(security.TokenExpired):
        security.decode_access_token(settings, token)
