"""Fixtures for fault tests: apps whose PostgreSQL or Redis sits behind a TCP proxy the test can cut."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from quart import Quart

from backend.app import create_app
from tests.conftest import make_settings
from tests.fault.proxy import TCPProxy


def through_proxy(url: str, proxy: TCPProxy) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))


async def start_proxy(url: str) -> TCPProxy:
    parts = urlsplit(url)
    proxy = TCPProxy(parts.hostname or "127.0.0.1", parts.port or 0)
    await proxy.start()
    return proxy


@pytest.fixture
async def postgres_proxy(clean_postgres: str) -> AsyncIterator[TCPProxy]:
    proxy = await start_proxy(clean_postgres)
    yield proxy
    await proxy.stop()


@pytest.fixture
async def redis_proxy(clean_redis: str) -> AsyncIterator[TCPProxy]:
    proxy = await start_proxy(clean_redis)
    yield proxy
    await proxy.stop()


@pytest.fixture
async def app_behind_postgres_proxy(clean_postgres: str, postgres_proxy: TCPProxy) -> AsyncIterator[Quart]:
    application = create_app(make_settings(database_url=through_proxy(clean_postgres, postgres_proxy)))
    async with application.test_app():
        yield application


@pytest.fixture
async def app_behind_redis_proxy(clean_postgres: str, clean_redis: str, redis_proxy: TCPProxy) -> AsyncIterator[Quart]:
    settings = make_settings(database_url=clean_postgres, redis_url=through_proxy(clean_redis, redis_proxy))
    application = create_app(settings)
    async with application.test_app():
        yield application
