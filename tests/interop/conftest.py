"""Fixtures of the interoperability tests: the API as its own program (`stadspuls api`) on
a free loopback port over this test's database, which holds the conformance dataset, and a
third-party SensorThings client logged in with a writer's key of the city.

The client speaks HTTP through `requests` and blocks while it waits; the API answers from
its own process, so a test may call the client from its event loop.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import frost_sta_client as fsc
import httpx
import pytest

from api.keys import key_id_of
from deploy.ports import free_port, http_ok
from deploy.process import ManagedProcess
from tests.access import bearer, make_key
from tests.conformance.dataset import Dataset, post_dataset


@dataclass(frozen=True)
class Served:
    """The API program's address and the writer's key it knows."""

    origin: str
    key: str = field(repr=False)

    @property
    def root(self) -> str:
        """The SensorThings service root."""
        return f"{self.origin}/v1.1"


@pytest.fixture
async def writer_key(db_url: str) -> str:
    return await make_key(db_url, "writer", "city")


@pytest.fixture
def served(db_url: str, writer_key: str, state_dir: Path) -> Iterator[Served]:
    """`stadspuls api` on this test's database, without the MQTT extension."""
    port = free_port()
    program = ManagedProcess(
        "api", [sys.executable, "-m", "deploy", "api", "--database-url", db_url,
                "--port", str(port), "--no-mqtt"],
        state_dir / "api.log", None)
    program.start()
    try:
        program.wait_until(lambda: http_ok(port, "/v1.1"), 60)
        yield Served(f"http://127.0.0.1:{port}", writer_key)
    finally:
        program.stop()


@pytest.fixture
async def dataset(served: Served) -> Dataset:
    """The conformance dataset, posted through the running API."""
    async with httpx.AsyncClient(base_url=served.origin, headers=bearer(served.key)) as client:
        return await post_dataset(client)


@pytest.fixture
def service(served: Served) -> fsc.SensorThingsService:
    """The client as its README sets it up for a server with HTTP Basic authentication:
    the key's id is the username and the whole key the password."""
    login = fsc.AuthHandler(username=key_id_of(served.key), password=served.key)
    return fsc.SensorThingsService(served.root, auth_handler=login)
