"""Fixtures: one real stack per test session, a fresh database per test.

The stack is started by the same code as `stadspuls up` (deploy.stack.LocalStack), on free
loopback ports and in a temporary state directory. Its migrated database serves as the
template that every test's database is cloned from, which takes a fraction of a second.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from core.database import connect, quote_ident
from core.queries import query
from deploy.ports import free_port
from deploy.settings import StackSettings, database_url
from deploy.stack import LocalStack, temporary_state_dir
from deploy.system import Postgres, ensure_system

TEMPLATE_DB = "stadspuls_template"
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_install() -> Postgres:
    return ensure_system()


@pytest.fixture(scope="session")
async def stack(postgres_install: Postgres) -> AsyncIterator[LocalStack]:
    state = temporary_state_dir("stadspuls-test-")
    # Anonymous clients: the functional tests share this one broker across per-test
    # databases; tests/security runs a stack with authentication on, as `up` does.
    settings = StackSettings(
        state_dir=state, db_port=free_port(), mqtt_port=free_port(), db_name=TEMPLATE_DB,
        mqtt_auth=False,
    )
    local = LocalStack(settings, postgres_install)
    await local.start()
    conn = await connect(settings.admin_database_url)
    try:
        # Nothing may stay connected to a template while it is copied, TimescaleDB's
        # background workers included.
        await conn.execute(
            f"ALTER DATABASE {quote_ident(TEMPLATE_DB)} WITH ALLOW_CONNECTIONS false"
        )
        await conn.fetchval(query("admin", "disconnect_database"), TEMPLATE_DB)
    finally:
        await conn.close()
    yield local
    local.stop()
    shutil.rmtree(state, ignore_errors=True)


@asynccontextmanager
async def fresh_database(stack: LocalStack) -> AsyncIterator[str]:
    """A fresh, migrated, empty database cloned from the template; its URL."""
    name = f"test_{next(_numbers)}_{uuid.uuid4().hex[:8]}"
    admin = await connect(stack.settings.admin_database_url)
    try:
        await admin.execute(
            f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(TEMPLATE_DB)}"
        )
        yield database_url(stack.settings.db_port, name)
        await admin.execute(f"DROP DATABASE {quote_ident(name)} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def db_url(stack: LocalStack) -> AsyncIterator[str]:
    """The URL of a fresh, migrated, empty database for this test alone."""
    async with fresh_database(stack) as url:
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Any]:
    """An asyncpg connection to this test's database."""
    conn = await connect(db_url)
    yield conn
    await conn.close()


@pytest.fixture
def mqtt_port(stack: LocalStack) -> int:
    return stack.settings.mqtt_port


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix no other test publishes under."""
    return f"test/{uuid.uuid4().hex}"


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = temporary_state_dir("stadspuls-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)
