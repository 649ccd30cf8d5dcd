"""Settings, read from the environment and `.env` (pydantic-settings).

Every variable is unprefixed and documented in `.env.example`. Development works with no variables at
all; production refuses to start on settings that would be unsafe (see `_refuse_unsafe_production`).
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_KEY_LENGTH = 32
MIN_METRICS_TOKEN_LENGTH = 16
# Substrings of the values people paste from examples and tutorials.
PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "placeholder", "your-secret", "example", "xxxx")
KEYGEN_COMMAND = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./codementor.db"

Environment = Literal["development", "production", "test"]
LLMProvider = Literal["offline", "openai", "anthropic"]


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def normalise_database_url(url: str) -> str:
    """Accept the URLs people have (`postgres://`, `sqlite:///`) and pick our async drivers.

    libpq's `sslmode=` (what managed PostgreSQL hands out) becomes asyncpg's `ssl=`, which takes the same
    values (disable, allow, prefer, require, verify-ca, verify-full)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+asyncpg://" + url.removeprefix(prefix)
    if url.startswith("sqlite://"):
        url = "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    if url.startswith("postgresql+asyncpg://") and "?" in url:
        base, query = url.split("?", 1)
        pairs = [("ssl" if key == "sslmode" else key, value) for key, value in parse_qsl(query, keep_blank_values=True)]
        url = f"{base}?{urlencode(pairs)}"
    return url


DATABASE_SCHEMES = ("postgresql+asyncpg://", "sqlite+aiosqlite://")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# Enumerated settings people write in any case (`LOG_LEVEL=info`, `ENVIRONMENT=Production`).
LOWER_CASE_ENUMS = (
    "environment",
    "log_format",
    "email_backend",
    "llm_provider",
    "llm_fallback_provider",
    "jobs_backend",
    "sandbox_backend",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Environment = "development"
    secret_key: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = None
    log_format: Literal["console", "json"] | None = None

    database_url: str = DEFAULT_SQLITE_URL
    database_pool_size: int = Field(20, ge=1, le=500)
    database_statement_timeout_seconds: float = Field(30, gt=0)
    redis_url: str | None = None
    # Hops of reverse proxies whose X-Forwarded-For we trust for the client address (rate limits, logs).
    proxy_trusted_hops: int = Field(0, ge=0, le=5)

    cors_origins: Annotated[list[str], NoDecode] = ["http://localhost:5173", "http://localhost:3000"]
    frontend_url: str = "http://localhost:5173"
    # `localhost`, like the SPA dev server's origin: 127.0.0.1 would be another site, and the browser would
    # keep the SameSite cookies from the SPA's requests (SETUP.md, "The SPA in development").
    backend_url: str = "http://localhost:8000"

    bcrypt_rounds: int = Field(12, ge=4, le=31)
    access_token_ttl_seconds: int = Field(900, ge=60)
    refresh_token_ttl_seconds: int = Field(30 * 24 * 3600, ge=3600)

    email_backend: Literal["console", "smtp", "memory"] = "console"
    smtp_host: str = "localhost"
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    email_from: str = "CodeMentor <no-reply@codementor.local>"

    llm_provider: LLMProvider = "offline"
    llm_model: str | None = None
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(60, gt=0)
    llm_fallback_provider: LLMProvider | None = None
    llm_fallback_model: str | None = None
    llm_fallback_base_url: str | None = None
    llm_fallback_api_key: SecretStr | None = None
    llm_daily_token_budget: int = Field(200_000, ge=0)

    github_client_id: str | None = None
    github_client_secret: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    github_oauth_url: str = "https://github.com"
    github_webhook_secret: SecretStr | None = None
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    google_discovery_url: str = "https://accounts.google.com/.well-known/openid-configuration"
    token_encryption_key: SecretStr | None = None

    sandbox_backend: Literal["local", "piston"] = "local"
    sandbox_timeout_seconds: float = Field(10, gt=0, le=300)
    sandbox_memory_mb: int = Field(512, ge=64)  # everything one run may hold: processes and its /tmp
    sandbox_max_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # How long a run may wait for a free slot before the request answers 503 instead of piling up.
    sandbox_queue_timeout_seconds: float = Field(30, gt=0, le=600)
    # None: required in production (the server refuses to start without bubblewrap), optional elsewhere.
    sandbox_require_isolation: bool | None = None
    # Where the sandbox runner listens (unix:///path or http://host:port). Unset: `python -m backend`
    # starts a runner of its own as a child process.
    sandbox_url: str | None = None
    sandbox_bwrap: str = "bwrap"
    piston_url: str | None = None

    jobs_backend: Literal["inprocess", "arq"] = "inprocess"
    # The Contact of /.well-known/security.txt (RFC 9116): a mailto: or https: URI. Its Policy is
    # SECURITY_POLICY_URL, or our own /.well-known/security-policy when unset.
    security_contact: str = "mailto:security@codementor.local"
    security_policy_url: str | None = None
    rate_limits_enabled: bool = True
    # /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` when set; required in production.
    metrics_token: SecretStr | None = None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_origin(cls, origins: list[str]) -> list[str]:
        # Credentials (cookies) are always allowed, and browsers refuse `*` with credentials anyway.
        if "*" in origins:
            raise ValueError("CORS_ORIGINS must list origins explicitly; '*' cannot be used with cookies")
        return [origin.rstrip("/") for origin in origins]

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, url: str) -> str:
        url = normalise_database_url(url.strip())
        if not url.startswith(DATABASE_SCHEMES):
            scheme = url.split("://", 1)[0] if "://" in url else url[:20]
            raise ValueError(f"use postgresql://… or sqlite:///… (got {scheme!r})")
        return url

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        if not url.strip().startswith(REDIS_SCHEMES):
            scheme = url.split("://", 1)[0] if "://" in url else url[:20]
            raise ValueError(f"use redis://…, rediss://… or unix://… (got {scheme!r})")
        return url.strip()

    @field_validator(*LOWER_CASE_ENUMS, mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("frontend_url", "backend_url", "github_api_url", "github_oauth_url")
    @classmethod
    def _strip_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")

    @field_validator("metrics_token")
    @classmethod
    def _blank_metrics_token_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        # `METRICS_TOKEN=` (an uncommented .env.example line) must not pass for a token: /metrics would
        # then answer anyone sending `Authorization: Bearer` with nothing after it.
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @field_validator("token_encryption_key")
    @classmethod
    def _valid_fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        for key in value.get_secret_value().split(","):
            try:
                Fernet(key.strip())
            except ValueError:
                raise ValueError("TOKEN_ENCRYPTION_KEY must be comma-separated Fernet keys") from None
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.sandbox_url is not None and not self.sandbox_url.startswith(("unix:///", "http://")):
            raise ValueError("SANDBOX_URL must be unix:///path or http://host:port")
        if self.jobs_backend == "arq" and not self.redis_url:
            raise ValueError("JOBS_BACKEND=arq needs REDIS_URL (the job queue lives in Redis)")
        if self.environment != "production":
            if self.secret_key is None:
                self.secret_key = SecretStr(secrets.token_urlsafe(48))
                self._secret_key_generated = True
            return self
        secret = self.secret_key.get_secret_value() if self.secret_key else ""
        if not secret:
            raise ValueError("SECRET_KEY is required in production")
        if len(secret) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters in production")
        if any(marker in secret.lower() for marker in PLACEHOLDER_MARKERS):
            raise ValueError(f"SECRET_KEY is a placeholder; generate one with `{KEYGEN_COMMAND}`")
        if not self.frontend_url.startswith("https://"):
            raise ValueError("FRONTEND_URL must be https in production")
        self._refuse_unsafe_production_services()
        if self.token_encryption_key is None:
            raise ValueError("TOKEN_ENCRYPTION_KEY is required in production")
        if self.bcrypt_rounds < 12:
            raise ValueError("BCRYPT_ROUNDS must be at least 12 in production")
        return self

    def _refuse_unsafe_production_services(self) -> None:
        if not self.backend_url.startswith("https://"):
            raise ValueError("BACKEND_URL must be https in production (OAuth callbacks and links use it)")
        if "cors_origins" not in self.model_fields_set:
            raise ValueError("CORS_ORIGINS must be set in production (the SPA's https origin)")
        insecure = [origin for origin in self.cors_origins if not origin.startswith("https://")]
        if insecure:
            raise ValueError(f"CORS_ORIGINS must be https origins in production (not {insecure[0]})")
        if self.email_backend == "console":
            raise ValueError(
                "EMAIL_BACKEND=console writes reset and verification links to the log; use smtp in production"
            )
        if self.workers > 1 and self.is_sqlite:
            raise ValueError("WORKERS>1 needs PostgreSQL (DATABASE_URL): SQLite serves one process")
        if self.workers > 1 and not self.redis_url:
            raise ValueError("WORKERS>1 needs REDIS_URL: the in-memory cache would give each worker its own limits")
        missing_keys = self.missing_llm_keys()
        if missing_keys:
            raise ValueError(f"{missing_keys[0]} is required for the configured LLM provider in production")
        if self.metrics_token is None:
            raise ValueError("METRICS_TOKEN is required in production (/metrics then needs it as a bearer token)")
        if len(self.metrics_token.get_secret_value().strip()) < MIN_METRICS_TOKEN_LENGTH:
            raise ValueError(f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters in production")

    def missing_llm_keys(self) -> list[str]:
        """The API key settings a configured provider lacks (development warns; production refuses)."""
        missing = []
        if self.llm_provider in ("openai", "anthropic") and not (
            self.llm_api_key and self.llm_api_key.get_secret_value()
        ):
            missing.append("LLM_API_KEY")
        fallback_key = self.llm_fallback_api_key
        if self.llm_fallback_provider in ("openai", "anthropic") and not (
            fallback_key and fallback_key.get_secret_value()
        ):
            missing.append("LLM_FALLBACK_API_KEY")
        return missing

    _secret_key_generated: bool = False

    @property
    def secret_key_generated(self) -> bool:
        """True when development made up a per-process key (tokens die on restart)."""
        return self._secret_key_generated

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def requires_sandbox_isolation(self) -> bool:
        """Whether the sandbox must run under bubblewrap (checked by a real run when the runner starts)."""
        if self.sandbox_require_isolation is None:
            return self.is_production
        return self.sandbox_require_isolation

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def effective_log_format(self) -> Literal["console", "json"]:
        return self.log_format or ("json" if self.is_production else "console")

    @cached_property
    def effective_log_level(self) -> str:
        return self.log_level or ("WARNING" if self.environment == "test" else "INFO")


class ConfigError(SystemExit):
    """Raised with one readable line when the settings are unusable; exits the process non-zero."""


def load_settings() -> Settings:
    """Settings from the environment, or a one-line ConfigError instead of a pydantic traceback."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(_describe(item) for item in error.errors(include_url=False, include_input=False))
        raise ConfigError(f"configuration error: {problems}") from None


def _describe(item: ErrorDetails) -> str:
    field = ".".join(str(part) for part in item["loc"]).upper()
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{field}: {message}" if field else message
