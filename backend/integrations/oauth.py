"""Sign-in with GitHub (OAuth 2.0) and Google (OpenID Connect), on authlib's httpx client.

Each provider builds its authorize URL (PKCE S256 and `state`, plus a `nonce` for OpenID Connect) and
turns the code that comes back into an `Identity`. This module never touches the database. Whatever goes
wrong on the way (network, timeouts, 4xx/5xx, a body that is not what the protocol says, an id_token
that does not verify) leaves as `OAuthProviderError`, whose `reason` is a short category safe to log:
provider responses and exception texts can carry codes and tokens, so they are never part of it.
"""

from __future__ import annotations

import hmac
import ssl
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import authlib.deprecate  # noqa: F401  (installs authlib's "always" filter before ours overrides it)
import httpx
import jwt
from authlib.common.errors import AuthlibBaseError

with warnings.catch_warnings():
    # authlib 1.9 nudges towards the httpx2 fork at import; we stay on httpx, which the whole stack uses.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

from backend.config import Settings
from backend.integrations.tls import client_ssl_context

ProviderName = Literal["github", "google"]
PROVIDER_NAMES: tuple[ProviderName, ...] = ("github", "google")
TIMEOUT = httpx.Timeout(10.0)
USER_AGENT = "CodeMentor"
GITHUB_SCOPE = "read:user user:email"
GITHUB_API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
GOOGLE_SCOPE = "openid email profile"
# Google's endpoints and signing keys change rarely: an hour keeps most sign-ins off those round trips.
METADATA_TTL_SECONDS = 3600
# An unknown `kid` refetches the JWKS (keys rotate), but at most this often: forged kids must not
# turn us into a proxy that hammers the provider.
JWKS_MIN_REFRESH_SECONDS = 60
ID_TOKEN_ALGORITHMS = ["RS256"]
ID_TOKEN_LEEWAY_SECONDS = 60
TOKEN_REQUEST_HEADERS = {
    "Accept": "application/json",  # GitHub answers form-encoded without it
    "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
}


class OAuthProviderError(Exception):
    """The provider could not complete the sign-in; `reason` is `<step>.<category>`, e.g. `token.http_500`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    """Who signed in, as the provider vouches for it, and the tokens it granted us."""

    provider_user_id: str
    email: str | None
    email_verified: bool
    name: str | None
    login: str | None
    avatar_url: str | None
    access_token: str
    refresh_token: str | None
    scopes: str | None


@contextmanager
def provider_step(step: str) -> Iterator[None]:
    """Translate every failure of one exchange with the provider into an `OAuthProviderError`."""
    try:
        yield
    except OAuthProviderError:
        raise
    except httpx.TimeoutException as error:
        raise OAuthProviderError(f"{step}.timeout") from error
    except httpx.HTTPStatusError as error:
        raise OAuthProviderError(f"{step}.http_{error.response.status_code}") from error
    except httpx.HTTPError as error:
        raise OAuthProviderError(f"{step}.network_error") from error
    except AuthlibBaseError as error:  # an OAuth `error` answer, e.g. a code already used
        raise OAuthProviderError(f"{step}.rejected") from error
    except jwt.PyJWTError as error:
        raise OAuthProviderError(f"{step}.invalid") from error
    except (ValueError, KeyError) as error:  # not JSON (JSONDecodeError is a ValueError), or the wrong shape
        raise OAuthProviderError(f"{step}.bad_response") from error


class BadResponse(ValueError):
    """The provider answered, but not in the shape its protocol promises."""


def json_body(response: httpx.Response) -> Any:
    response.raise_for_status()
    return response.json()


def json_object(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    if not isinstance(body, dict):
        raise BadResponse("expected a JSON object")
    return body


def optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def normalise_scopes(scope: object) -> str | None:
    """GitHub separates granted scopes with commas, Google with spaces: store them space-separated."""
    if not isinstance(scope, str):
        return None
    return " ".join(sorted({part for part in scope.replace(",", " ").split() if part})) or None


def access_token_of(token: dict[str, Any]) -> str:
    access_token = token.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise KeyError("access_token")
    return access_token


class Provider(ABC):
    """One identity provider: build the authorize URL, then trade the callback's code for an identity."""

    name: ClassVar[str]
    scope: ClassVar[str]
    token_endpoint_auth_method: ClassVar[str]

    def __init__(self, client_id: str, client_secret: str, redirect_uri: str, ssl_context: ssl.SSLContext) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._ssl_context = ssl_context

    def client(self) -> AsyncOAuth2Client:
        """A client for one sign-in (it carries that user's token), with timeouts on every call."""
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            scope=self.scope,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method=self.token_endpoint_auth_method,
            timeout=TIMEOUT,
            verify=self._ssl_context,
            headers={"User-Agent": USER_AGENT},
        )

    @abstractmethod
    async def authorize_url(self, *, state: str, code_verifier: str, nonce: str) -> str:
        """The provider's consent page for this flow."""

    @abstractmethod
    async def fetch_identity(self, *, code: str, code_verifier: str, nonce: str) -> Identity:
        """Exchange the code (with the PKCE verifier) and find out who signed in."""

    async def _fetch_token(self, client: AsyncOAuth2Client, url: str, code: str, code_verifier: str) -> dict[str, Any]:
        with provider_step("token"):
            token = await client.fetch_token(url, code=code, code_verifier=code_verifier, headers=TOKEN_REQUEST_HEADERS)
            access_token_of(token)
            return dict(token)


class GitHub(Provider):
    name = "github"
    scope = GITHUB_SCOPE
    token_endpoint_auth_method = "client_secret_post"  # noqa: S105 (a method name, not a secret)

    def __init__(self, settings: Settings, client_secret: str, redirect_uri: str, ssl_context: ssl.SSLContext) -> None:
        assert settings.github_client_id is not None
        super().__init__(settings.github_client_id, client_secret, redirect_uri, ssl_context)
        self.authorize_endpoint = f"{settings.github_oauth_url}/login/oauth/authorize"
        self.token_endpoint = f"{settings.github_oauth_url}/login/oauth/access_token"
        self.api_url = settings.github_api_url

    async def authorize_url(self, *, state: str, code_verifier: str, nonce: str) -> str:
        # GitHub is plain OAuth 2.0: no id_token, so the nonce has nothing to bind to.
        async with self.client() as client:
            url, _ = client.create_authorization_url(self.authorize_endpoint, state=state, code_verifier=code_verifier)
        return url

    async def fetch_identity(self, *, code: str, code_verifier: str, nonce: str) -> Identity:
        async with self.client() as client:
            token = await self._fetch_token(client, self.token_endpoint, code, code_verifier)
            with provider_step("user"):
                profile = json_object(await client.get(f"{self.api_url}/user", headers=GITHUB_API_HEADERS))
                if not isinstance(profile.get("id"), int) or isinstance(profile["id"], bool):
                    raise BadResponse("the user has no numeric id")
                provider_user_id = str(profile["id"])
            with provider_step("emails"):
                emails = json_body(await client.get(f"{self.api_url}/user/emails", headers=GITHUB_API_HEADERS))
                email = self._verified_email(emails)
        return Identity(
            provider_user_id=provider_user_id,
            email=email,
            email_verified=email is not None,
            name=optional_str(profile.get("name")),
            login=optional_str(profile.get("login")),
            avatar_url=optional_str(profile.get("avatar_url")),
            access_token=access_token_of(token),
            refresh_token=optional_str(token.get("refresh_token")),
            scopes=normalise_scopes(token.get("scope")),
        )

    async def revoke(self, token: str) -> bool:
        """End `token` at GitHub (`DELETE /applications/{client_id}/token`, as the OAuth app): True once
        revoked, False when GitHub no longer knows it (404, 422); `OAuthProviderError` when it cannot say."""
        with provider_step("revoke"):
            async with httpx.AsyncClient(
                timeout=TIMEOUT, verify=self._ssl_context, headers={"User-Agent": USER_AGENT}
            ) as client:
                response = await client.request(
                    "DELETE",
                    f"{self.api_url}/applications/{self.client_id}/token",
                    auth=(self.client_id, self._client_secret),
                    json={"access_token": token},
                    headers=GITHUB_API_HEADERS,
                )
            if response.status_code in (404, 422):
                return False
            response.raise_for_status()
            return True

    @staticmethod
    def _verified_email(emails: object) -> str | None:
        """The primary address if GitHub has verified it, else another verified one, else none."""
        if not isinstance(emails, list):
            raise BadResponse("expected a JSON array of emails")
        verified = [
            item for item in emails if isinstance(item, dict) and item.get("verified") is True and item.get("email")
        ]
        verified.sort(key=lambda item: item.get("primary") is not True)
        return str(verified[0]["email"]) if verified else None


class GitHubRepositoryAccess(GitHub):
    """GitHub asked for the `repo` scope too, for linking repositories and reviewing their code.

    Its own name keeps its flows apart from sign-in flows: a state issued for one is refused by the other."""

    name = "github_repositories"
    scope = f"{GITHUB_SCOPE} repo"


@dataclass
class _Cached:
    value: Any
    fetched_at: float


class Google(Provider):
    name = "google"
    scope = GOOGLE_SCOPE
    token_endpoint_auth_method = "client_secret_basic"  # noqa: S105 (a method name, not a secret)

    def __init__(self, settings: Settings, client_secret: str, redirect_uri: str, ssl_context: ssl.SSLContext) -> None:
        assert settings.google_client_id is not None
        super().__init__(settings.google_client_id, client_secret, redirect_uri, ssl_context)
        self.discovery_url = settings.google_discovery_url
        # Per process, like the keys of any OIDC client library; every worker fetches its own copy.
        self._metadata: _Cached | None = None
        self._jwks: _Cached | None = None

    async def authorize_url(self, *, state: str, code_verifier: str, nonce: str) -> str:
        async with self.client() as client:
            metadata = await self._discovery(client)
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"], state=state, code_verifier=code_verifier, nonce=nonce
            )
        return url

    async def fetch_identity(self, *, code: str, code_verifier: str, nonce: str) -> Identity:
        async with self.client() as client:
            metadata = await self._discovery(client)
            token = await self._fetch_token(client, metadata["token_endpoint"], code, code_verifier)
            claims = await self._verified_claims(client, metadata, token.get("id_token"), nonce)
        return Identity(
            provider_user_id=claims["sub"],
            email=optional_str(claims.get("email")),
            email_verified=claims.get("email_verified") is True,
            name=optional_str(claims.get("name")),
            login=None,
            avatar_url=optional_str(claims.get("picture")),
            access_token=access_token_of(token),
            refresh_token=optional_str(token.get("refresh_token")),
            scopes=normalise_scopes(token.get("scope")),
        )

    async def _discovery(self, client: AsyncOAuth2Client) -> dict[str, str]:
        cached = self._metadata
        if cached is not None and time.monotonic() - cached.fetched_at < METADATA_TTL_SECONDS:
            return cached.value
        with provider_step("discovery"):
            document = json_object(await client.request("GET", self.discovery_url, withhold_token=True))
            metadata = {
                key: str(document[key])
                for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
                if isinstance(document[key], str)
            }
            if len(metadata) != 4:
                raise BadResponse("the discovery document lacks a required endpoint")
        self._metadata = _Cached(metadata, time.monotonic())
        return metadata

    async def _signing_key(self, client: AsyncOAuth2Client, jwks_uri: str, kid: object) -> jwt.PyJWK:
        for refresh in (False, True):
            keys = await self._key_set(client, jwks_uri, refresh=refresh)
            for key in keys.keys:
                if key.key_id == kid:
                    return key
        raise jwt.InvalidKeyError("no key with the id_token's kid")

    async def _key_set(self, client: AsyncOAuth2Client, jwks_uri: str, *, refresh: bool) -> jwt.PyJWKSet:
        cached = self._jwks
        if cached is not None:
            age = time.monotonic() - cached.fetched_at
            if age < (JWKS_MIN_REFRESH_SECONDS if refresh else METADATA_TTL_SECONDS):
                return cached.value
        with provider_step("jwks"):
            key_set = jwt.PyJWKSet.from_dict(json_object(await client.request("GET", jwks_uri, withhold_token=True)))
        self._jwks = _Cached(key_set, time.monotonic())
        return key_set

    async def _verified_claims(
        self, client: AsyncOAuth2Client, metadata: dict[str, str], id_token: object, nonce: str
    ) -> dict[str, Any]:
        """The id_token's claims, once its RS256 signature, issuer, audience, expiry and nonce check out."""
        with provider_step("id_token"):
            if not isinstance(id_token, str):
                raise jwt.InvalidTokenError("the token response has no id_token")
            header = jwt.get_unverified_header(id_token)
            key = await self._signing_key(client, metadata["jwks_uri"], header.get("kid"))
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key,
                algorithms=ID_TOKEN_ALGORITHMS,
                audience=self.client_id,
                issuer=metadata["issuer"],
                leeway=ID_TOKEN_LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "sub", "exp", "iat"]},
            )
            self._check_client_claims(claims, nonce)
            return claims

    def _check_client_claims(self, claims: dict[str, Any], nonce: str) -> None:
        """The claims PyJWT leaves to us: the nonce of this flow, and `azp` when several audiences share it."""
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise jwt.InvalidTokenError("nonce mismatch")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != self.client_id:
            raise jwt.InvalidTokenError("azp is not this client")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise jwt.InvalidTokenError("sub is missing")


class Providers:
    """The providers this server is configured for (client id and secret both set), by name."""

    def __init__(self, settings: Settings, callback_url: Callable[[str], str]) -> None:
        # One TLS context for every client: loading the CA bundle is slow, blocking work that must not
        # happen on the event loop for each sign-in.
        ssl_context = client_ssl_context()
        self._providers: dict[str, Provider] = {}
        if settings.github_client_id and settings.github_client_secret:
            secret = settings.github_client_secret.get_secret_value()
            self._providers["github"] = GitHub(settings, secret, callback_url("github"), ssl_context)
        if settings.google_client_id and settings.google_client_secret:
            secret = settings.google_client_secret.get_secret_value()
            self._providers["google"] = Google(settings, secret, callback_url("google"), ssl_context)

    def get(self, name: str) -> Provider | None:
        return self._providers.get(name)

    def names(self) -> list[ProviderName]:
        return [name for name in PROVIDER_NAMES if name in self._providers]
