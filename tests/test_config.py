"""Settings: environment parsing and the production refusals (in code and at the command line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from backend.config import ConfigError, Settings, load_settings
from backend.db import create_engine
from tests.conftest import make_settings

GOOD_PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": "q3J8vN2kLx9PzR4tW7yB1cF6hM0sD5gA8eU2iO4nV7",
    "FRONTEND_URL": "https://app.codementor.example",
    "TOKEN_ENCRYPTION_KEY": "Sbsl32b5IvYhwduhIXIexh2wjLrDsU5L2oqKVPKryOU=",
    "CORS_ORIGINS": "https://app.codementor.example",
    "BACKEND_URL": "https://api.codementor.example",
    "EMAIL_BACKEND": "smtp",
    "METRICS_TOKEN": "metrics-scraper-token-0123456789",
}


def production(**overrides: str) -> Settings:
    values = {key.lower(): value for key, value in {**GOOD_PRODUCTION, **overrides}.items()}
    return Settings(_env_file=None, **values)


def test_valid_production_settings_load() -> None:
    settings = production()
    assert settings.is_production and settings.effective_log_format == "json"
    assert not settings.secret_key_generated


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY is required"),
        ({"SECRET_KEY": "too-short-secret"}, "at least 32 characters"),
        ({"SECRET_KEY": "change-me-to-48-random-characters-please-abcdef"}, "placeholder"),
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
        ({"FRONTEND_URL": "http://app.codementor.example"}, "FRONTEND_URL must be https"),
        ({"TOKEN_ENCRYPTION_KEY": ""}, "TOKEN_ENCRYPTION_KEY"),
        ({"BCRYPT_ROUNDS": "10"}, "BCRYPT_ROUNDS"),
        ({"TOKEN_ENCRYPTION_KEY": "not-a-fernet-key"}, "Fernet keys"),
        ({"EMAIL_BACKEND": "console"}, "EMAIL_BACKEND=console"),
        ({"BACKEND_URL": "http://api.codementor.example"}, "BACKEND_URL must be https"),
        ({"CORS_ORIGINS": "https://app.codementor.example,http://app.codementor.example"}, "https origins"),
        ({"CORS_ORIGINS": ""}, "CORS_ORIGINS must be set"),
        ({"WORKERS": "2"}, "WORKERS>1 needs PostgreSQL"),
        ({"WORKERS": "2", "DATABASE_URL": "postgresql://db/codementor"}, "WORKERS>1 needs REDIS_URL"),
        ({"LLM_PROVIDER": "openai"}, "LLM_API_KEY is required"),
        ({"LLM_FALLBACK_PROVIDER": "anthropic"}, "LLM_FALLBACK_API_KEY is required"),
        ({"METRICS_TOKEN": ""}, "METRICS_TOKEN is required"),
    ],
)
def test_unsafe_production_settings_are_refused(overrides: dict[str, str], message: str) -> None:
    values = {key: value for key, value in {**GOOD_PRODUCTION, **overrides}.items() if value}
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, **{key.lower(): value for key, value in values.items()})


def test_development_generates_a_secret_key() -> None:
    settings = Settings(_env_file=None)
    assert settings.secret_key is not None and len(settings.secret_key.get_secret_value()) >= 32
    assert settings.secret_key_generated
    assert Settings(_env_file=None).secret_key != settings.secret_key


def test_environment_variables_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example/")
    monkeypatch.setenv("DATABASE_URL", "postgres://user@db.internal:5432/codementor")
    monkeypatch.setenv("RATE_LIMITS_ENABLED", "false")
    monkeypatch.setenv("PORT", "9000")
    settings = Settings(_env_file=None)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.database_url == "postgresql+asyncpg://user@db.internal:5432/codementor"
    assert settings.rate_limits_enabled is False and settings.port == 9000


def test_valid_production_with_workers_redis_and_llm_key_loads() -> None:
    settings = production(
        WORKERS="4",
        DATABASE_URL="postgresql://db/codementor",
        REDIS_URL="redis://cache:6379/0",
        LLM_PROVIDER="openai",
        LLM_API_KEY="sk-live-key",
    )
    assert settings.workers == 4 and settings.missing_llm_keys() == []


def test_development_only_warns_about_a_provider_without_its_key() -> None:
    settings = make_settings(llm_provider="anthropic")
    assert settings.missing_llm_keys() == ["LLM_API_KEY"]


def test_enumerated_settings_accept_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"LOG_LEVEL": "info", "ENVIRONMENT": "Development", "EMAIL_BACKEND": "MEMORY"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LLM_PROVIDER", " Offline ")
    monkeypatch.setenv("SANDBOX_BACKEND", "Local")
    settings = Settings(_env_file=None)
    assert (settings.log_level, settings.environment, settings.email_backend) == ("INFO", "development", "memory")
    assert settings.llm_provider == "offline" and settings.sandbox_backend == "local"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "mysql://root@db/codementor", "DATABASE_URL: use postgresql://… or sqlite:///… (got 'mysql')"),
        ("DATABASE_URL", "codementor.db", "DATABASE_URL: use postgresql://"),
        ("REDIS_URL", "http://cache:6379", "REDIS_URL: use redis://…, rediss://… or unix://… (got 'http')"),
    ],
)
def test_bad_url_scheme_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert message in str(refused.value) and "\n" not in str(refused.value)


async def test_sslmode_from_a_managed_postgres_url_works_with_asyncpg(postgres_url: str) -> None:
    libpq_style = postgres_url.replace("postgresql+asyncpg://", "postgres://")
    assert make_settings(database_url=f"{libpq_style}?sslmode=require").database_url.endswith("?ssl=require")
    settings = make_settings(database_url=f"{libpq_style}?sslmode=prefer")
    assert settings.database_url.endswith("?ssl=prefer")
    engine = create_engine(settings)  # the local server has no TLS: `prefer` falls back, `require` would refuse
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()


def test_sqlite_url_gets_the_async_driver() -> None:
    assert make_settings(database_url="sqlite:///./x.db").database_url == "sqlite+aiosqlite:///./x.db"


def test_production_refusal_exits_with_one_line(tmp_path: os.PathLike[str]) -> None:
    env = {key: value for key, value in os.environ.items() if key not in GOOD_PRODUCTION}
    env.update(GOOD_PRODUCTION, SECRET_KEY="short")
    result = _run_backend(env, tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "configuration error: SECRET_KEY must be at least 32 characters in production"
    ]


def _run_backend(env: dict[str, str], cwd: os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root
    return subprocess.run(
        [sys.executable, "-m", "backend", "serve"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_arq_jobs_without_redis_are_refused_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("JOBS_BACKEND", "arq")
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert "JOBS_BACKEND=arq needs REDIS_URL" in str(refused.value) and "\n" not in str(refused.value)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert load_settings().jobs_backend == "arq"
