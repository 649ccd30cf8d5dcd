"""Migrations go up and down cleanly on both databases and match the models exactly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from backend import migrations
from backend.db import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/migrate.db"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
async def fresh_postgres_url(create_postgres_database: Callable) -> str:
    return await create_postgres_database()


async def tables_and_diff(url: str) -> tuple[set[str], list]:
    engine = create_async_engine(url)

    def inspect_sync(connection: Connection) -> tuple[set[str], list]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return set(inspect(connection).get_table_names()), compare_metadata(context, Base.metadata)

    async with engine.connect() as connection:
        result = await connection.run_sync(inspect_sync)
    await engine.dispose()
    return result


async def test_upgrade_downgrade_upgrade_matches_models(empty_database: str) -> None:
    await asyncio.to_thread(migrations.upgrade, empty_database)
    tables, diff = await tables_and_diff(empty_database)
    assert {table.name for table in Base.metadata.sorted_tables} <= tables
    assert diff == []  # the models and the migrations describe the same schema

    await asyncio.to_thread(migrations.downgrade, empty_database, "base")
    tables, _ = await tables_and_diff(empty_database)
    assert tables <= {"alembic_version"}

    await asyncio.to_thread(migrations.upgrade, empty_database)
    tables, diff = await tables_and_diff(empty_database)
    assert "users" in tables and diff == []
