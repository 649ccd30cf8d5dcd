"""Alembic environment: async engine, batch mode for SQLite, our models' metadata."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import backend.models  # noqa: F401  (registers every table on Base.metadata)
from alembic import context
from backend.config import Settings, normalise_database_url
from backend.db import Base, UTCDateTime

config = context.config
# Called from code (`python -m backend migrate`, tests) the caller owns logging; from the CLI, use the ini.
if config.config_file_name is not None and not config.attributes.get("database_url"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("database_url") or Settings().database_url
    return normalise_database_url(url)


def render_item(type_: str, obj: object, _: object) -> str | bool:
    # Migrations describe the column type; the UTC conversion lives in the model's TypeDecorator.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def configure(**kwargs: object) -> None:
    url = kwargs.pop("url", None) or database_url()
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=str(url).startswith("sqlite"),  # SQLite cannot ALTER most things in place
        compare_type=True,
        render_item=render_item,
        **kwargs,
    )


def run_migrations_offline() -> None:
    configure(url=database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    configure(connection=connection, url=str(connection.engine.url))
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_async_engine(database_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
