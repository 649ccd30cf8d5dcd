"""Settings: environment parsing and the production refusals (in code and at the command line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.config import ConfigError, Settings, load_settings
from tests.conftest import make_settings

GOOD_PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": "q3J8vN2kLx9PzR4tW7yB1cF6hM0sD5gA8eU2iO4nV7",
    "FRONTEND_URL": "https://app.codementor.example",
    "TOKEN_ENCRYPTION_KEY": "Sbsl32b5IvYhwduhIXIexh2wjLrDsU5L2oqKVPKryOU=",
    "CORS_ORIGINS": "https://app.codementor.example",
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
