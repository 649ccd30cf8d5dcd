"""Fake GitHub and Google sign-in servers speaking the real OAuth 2.0 / OpenID Connect wire protocol.

Each is a small Quart app served by Hypercorn on a free 127.0.0.1 port, so our real authlib and httpx
code talks real HTTP to it. They check what the real providers check (client credentials, redirect
URI, single-use codes, the PKCE verifier against the challenge, bearer tokens) and answer in the same
shapes (GitHub's token errors are a 200 with an `error` field; Google's are a 400).

Tests steer them through attributes: who signs in (`account`), whether consent is denied (`deny`),
an endpoint that answers with an error status (`fail`) or late (`delay`), and for Google an id_token signed by another
key (`sign_with_other_key`), carrying another nonce (`nonce_override`) or other claims (`claims_override`).
Call `reset()` between tests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, Response, jsonify, request

from tests.servers import free_port

STARTUP_SECONDS = 5


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256(code_verifier: str) -> str:
    return b64url(hashlib.sha256(code_verifier.encode("ascii")).digest())


def redirect_back(redirect_uri: str, **params: str) -> Response:
    separator = "&" if "?" in redirect_uri else "?"
    return Response("", status=302, headers={"Location": f"{redirect_uri}{separator}{urlencode(params)}"})


@dataclass
class Grant:
    """An authorization code the fake has handed out, and what redeeming it must match."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    account: Any
    nonce: str | None = None
    scope: str = ""


class FakeServer:
    """A Quart app on a real socket; `start()` and `stop()` run it on the current event loop."""

    name = "fake"
    error_style = "json"

    def __init__(self) -> None:
        self.client_id = f"{self.name}-client-{secrets.token_hex(4)}"
        self.client_secret = secrets.token_urlsafe(24)
        self.app = Quart(f"fake_{self.name}")
        self.port = 0
        self._shutdown = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.app.before_request(self._maybe_fail)
        self.reset()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.deny = False
        self.fail: dict[str, int] = {}  # endpoint name → status to answer instead
        self.delay: dict[str, float] = {}  # endpoint name → seconds to wait before answering
        self.grants: dict[str, Grant] = {}
        self.issued_tokens: list[str] = []  # every access/refresh token handed out, for leak checks
        self.token_requests = 0

    async def start(self) -> None:
        self.port = free_port()
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.accesslog = None
        config.errorlog = None
        self._shutdown = asyncio.Event()
        self._task = asyncio.create_task(serve(self.app, config, shutdown_trigger=self._shutdown.wait))  # type: ignore[arg-type]
        await self._wait_until_listening()

    async def stop(self) -> None:
        self._shutdown.set()
        if self._task is not None:
            await self._task

    async def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert self._task is not None
            if self._task.done():
                self._task.result()  # raises what stopped the server
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def _maybe_fail(self) -> Response | None:
        endpoint = request.endpoint.rsplit(".", 1)[-1] if request.endpoint else ""
        if endpoint in self.delay:
            await asyncio.sleep(self.delay[endpoint])
        status = self.fail.get(endpoint)
        if status is None:
            return None
        return Response(json.dumps({"error": "server_error"}), status=status, content_type="application/json")

    # --- shared protocol checks -----------------------------------------------------------------------

    def authorize(self, *, required_scope: str, account: Any) -> Response:
        """The consent page, answered at once: straight back to redirect_uri with a code, or an error."""
        args = request.args
        redirect_uri, state = args.get("redirect_uri", ""), args.get("state", "")
        if args.get("client_id") != self.client_id or not redirect_uri.startswith("http"):
            return Response("unknown client or redirect_uri", status=400)
        if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            return Response("PKCE with S256 is required", status=400)
        if required_scope not in args.get("scope", "").split() or args.get("response_type") != "code":
            return Response("bad scope or response_type", status=400)
        if self.deny:
            return redirect_back(redirect_uri, error="access_denied", state=state)
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(
            self.client_id, redirect_uri, args["code_challenge"], account, args.get("nonce"), args.get("scope", "")
        )
        return redirect_back(redirect_uri, code=code, state=state)

    async def redeem(self) -> tuple[Grant | None, str | None]:
        """The grant a token request proves it may redeem, or the OAuth error code why not."""
        self.token_requests += 1
        form = await request.form
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if request.authorization is not None and request.authorization.type == "basic":
            client_id, client_secret = request.authorization.username, request.authorization.password
        if client_id != self.client_id or not hmac.compare_digest(client_secret or "", self.client_secret):
            return None, "invalid_client"
        grant = self.grants.pop(form.get("code", ""), None)  # codes are single use
        if grant is None or form.get("grant_type") != "authorization_code":
            return None, "invalid_grant"
        if form.get("redirect_uri") != grant.redirect_uri:
            return None, "redirect_uri_mismatch"
        verifier = form.get("code_verifier", "")
        if not verifier or not hmac.compare_digest(s256(verifier), grant.code_challenge):
            return None, "invalid_grant"
        return grant, None

    def new_token(self, prefix: str) -> str:
        token = f"{prefix}_{secrets.token_urlsafe(24)}"
        self.issued_tokens.append(token)
        return token

    def bearer(self) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return token if scheme.lower() in {"bearer", "token"} and token else None


# --- GitHub ----------------------------------------------------------------------------------------


@dataclass
class GitHubAccount:
    id: int
    login: str
    name: str | None
    email: str
    email_verified: bool = True
    avatar_url: str | None = "https://avatars.githubusercontent.com/u/1"
    extra_emails: list[dict[str, Any]] = field(default_factory=list)

    def emails(self) -> list[dict[str, Any]]:
        primary = {"email": self.email, "primary": True, "verified": self.email_verified, "visibility": "public"}
        return [*self.extra_emails, primary]


class FakeGitHub(FakeServer):
    """github.com (`/login/oauth/*`) and api.github.com (`/user`, `/user/emails`) on one port."""

    name = "github"

    def __init__(self) -> None:
        super().__init__()
        self.app.get("/login/oauth/authorize")(self.authorize_page)
        self.app.post("/login/oauth/access_token")(self.access_token)
        self.app.get("/user")(self.user)
        self.app.get("/user/emails")(self.user_emails)
        self.app.delete("/applications/<client_id>/token")(self.revoke_token)

    def reset(self) -> None:
        super().reset()
        self.account = GitHubAccount(id=4242, login="octo-ada", name="Ada Octocat", email="ada@example.com")
        self.tokens: dict[str, GitHubAccount] = {}
        self.revoked: list[str] = []  # tokens revoked by the OAuth app (DELETE /applications/{id}/token)

    async def authorize_page(self) -> Response:
        return self.authorize(required_scope="user:email", account=self.account)

    async def access_token(self) -> Response:
        grant, error = await self.redeem()
        if grant is None:
            # GitHub answers token errors with 200 and an `error` field.
            return self._token_answer({"error": error or "bad_verification_code", "error_description": "rejected"})
        token = self.new_token("gho")
        self.tokens[token] = grant.account
        # GitHub grants what the authorize URL asked for and reports it comma-separated.
        scope = ",".join(grant.scope.split())
        return self._token_answer({"access_token": token, "token_type": "bearer", "scope": scope})

    def _token_answer(self, body: dict[str, str]) -> Response:
        # Without `Accept: application/json` GitHub answers form-encoded, which a JSON client cannot read.
        if "application/json" in request.headers.get("Accept", ""):
            return jsonify(body)
        return Response(urlencode(body), content_type="application/x-www-form-urlencoded")

    def _account(self) -> GitHubAccount | None:
        token = self.bearer()
        return self.tokens.get(token) if token else None

    async def user(self) -> Response | tuple[Response, int]:
        account = self._account()
        if account is None:
            return jsonify({"message": "Bad credentials"}), 401
        return jsonify(
            {"id": account.id, "login": account.login, "name": account.name, "avatar_url": account.avatar_url}
        )

    async def revoke_token(self, client_id: str) -> Response | tuple[Response, int]:
        """GitHub's token revocation: the OAuth app authenticates with its own id and secret (Basic), the token
        is in the body; 204 once revoked, 404 for an app or token it does not know."""
        auth = request.authorization
        if (
            client_id != self.client_id
            or auth is None
            or (auth.username, auth.password) != (client_id, self.client_secret)
        ):
            return jsonify({"message": "Not Found"}), 404
        token = ((await request.get_json(silent=True)) or {}).get("access_token")
        if token not in self.tokens:
            return jsonify({"message": "Not Found"}), 404
        del self.tokens[token]
        self.revoked.append(token)
        return Response(status=204)

    async def user_emails(self) -> Response | tuple[Response, int]:
        account = self._account()
        if account is None:
            return jsonify({"message": "Bad credentials"}), 401
        return jsonify(account.emails())


# --- Google ----------------------------------------------------------------------------------------


@dataclass
class GoogleAccount:
    sub: str
    email: str
    email_verified: bool = True
    name: str | None = "Grace Hopper"
    picture: str | None = "https://lh3.googleusercontent.com/a/grace"


class RSAKey:
    """A real RSA key pair; signs compact JWS by hand (independent of the JWT library under test)."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, str]:
        numbers = self._private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": kid or self.kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = self._private.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"


class FakeGoogle(FakeServer):
    """accounts.google.com as an OpenID Connect provider: discovery, authorize, token, JWKS."""

    name = "google"

    def __init__(self) -> None:
        self.key = RSAKey("fake-google-key-1")
        self.other_key = RSAKey("fake-google-key-1")  # same kid: a forgery claiming the published key
        super().__init__()
        self.app.get("/.well-known/openid-configuration")(self.discovery)
        self.app.get("/authorize")(self.authorize_page)
        self.app.post("/token")(self.token)
        self.app.get("/jwks")(self.jwks)

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid-configuration"

    def reset(self) -> None:
        super().reset()
        self.account = GoogleAccount(sub="110248495921238986420", email="grace@example.com")
        self.sign_with_other_key = False
        self.nonce_override: str | None = None
        self.claims_override: dict[str, Any] = {}
        self.issue_refresh_token = True

    async def discovery(self) -> Response:
        return jsonify(
            {
                "issuer": self.base_url,
                "authorization_endpoint": f"{self.base_url}/authorize",
                "token_endpoint": f"{self.base_url}/token",
                "userinfo_endpoint": f"{self.base_url}/userinfo",
                "jwks_uri": f"{self.base_url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "code_challenge_methods_supported": ["plain", "S256"],
            }
        )

    async def authorize_page(self) -> Response:
        return self.authorize(required_scope="openid", account=self.account)

    async def token(self) -> Response | tuple[Response, int]:
        grant, error = await self.redeem()
        if grant is None:
            return jsonify({"error": error, "error_description": "rejected"}), 400
        body: dict[str, Any] = {
            "access_token": self.new_token("ya29"),
            "expires_in": 3599,
            "scope": "openid https://www.googleapis.com/auth/userinfo.email "
            "https://www.googleapis.com/auth/userinfo.profile",
            "token_type": "Bearer",
            "id_token": self.id_token(grant),
        }
        if self.issue_refresh_token:
            body["refresh_token"] = self.new_token("1//refresh")
        return jsonify(body)

    def id_token(self, grant: Grant) -> str:
        account: GoogleAccount = grant.account
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.base_url,
            "azp": self.client_id,
            "aud": self.client_id,
            "sub": account.sub,
            "email": account.email,
            "email_verified": account.email_verified,
            "name": account.name,
            "picture": account.picture,
            "nonce": self.nonce_override if self.nonce_override is not None else grant.nonce,
            "iat": now,
            "exp": now + 3600,
        }
        claims.update(self.claims_override)
        return (self.other_key if self.sign_with_other_key else self.key).sign(claims)

    async def jwks(self) -> Response:
        return jsonify({"keys": [self.key.jwk()]})
