"""The in-memory view of the registry that maps SenML names to datastreams.

It is loaded whole (a city's registry is thousands of rows, not millions) and reloaded when
the database announces a change on the `registry_changed` channel, which triggers on
things, gateways and datastreams send.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from core.queries import query

log = logging.getLogger(__name__)

CHANNEL = "registry_changed"

OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
# What a datastream's observation type accepts: "number", "integer", "boolean", "string",
# or "any".
KINDS = {
    OM + "OM_Measurement": "number",
    OM + "OM_CountObservation": "integer",
    OM + "OM_TruthObservation": "boolean",
    OM + "OM_CategoryObservation": "string",
}


@dataclass(frozen=True, slots=True)
class Target:
    """Where a resolved SenML record goes, the FeatureOfInterest its reading gets, and the
    plausible range of its observed property (unbounded where it has none)."""

    datastream_id: int
    unit: str | None
    kind: str
    device_id: str
    feature_id: int | None = None
    low: float = -math.inf
    high: float = math.inf
    property: str = ""


@dataclass(frozen=True)
class Registry:
    """Datastreams by resolved SenML name; devices with their gateway; the restricted
    Datastreams, whose readings are announced on their own topics only; the agency code of
    each Datastream, under which its readings are metered."""

    streams: dict[str, Target]
    gateway_of: dict[str, str | None]
    restricted: frozenset[int] = frozenset()
    agency_of: dict[int, str] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Registry:
        return cls({}, {})


async def load(conn: Any) -> Registry:
    """Read the registry view from the database."""
    rows = await conn.fetch(query("ingest", "registry_streams"))
    streams = {
        r["name"]: Target(r["id"], r["senml_unit"], KINDS.get(r["observation_type"], "any"),
                          r["device_id"], r["feature_id"],
                          -math.inf if r["low"] is None else r["low"],
                          math.inf if r["high"] is None else r["high"], r["property"])
        for r in rows
    }
    restricted = frozenset(r["id"] for r in rows if r["access"] == "restricted")
    agency_of = {r["id"]: r["agency"] for r in rows}
    gateway_of = {
        r["device_id"]: r["gateway_id"]
        for r in await conn.fetch(query("ingest", "registry_devices"))
    }
    return Registry(streams, gateway_of, restricted, agency_of)


class RegistryWatch:
    """Keeps a Registry current: reloads it whenever the database signals a change."""

    def __init__(self) -> None:
        self.current = Registry.empty()
        self.loaded = asyncio.Event()
        self._changed = asyncio.Event()

    async def run(self, database_url: str, connect: Any) -> None:
        """Load, listen, reload on change; reconnect when the connection drops."""
        while True:
            try:
                conn = await connect(database_url)
            except Exception:  # noqa: BLE001 - any failure: try again shortly
                await asyncio.sleep(1)
                continue
            try:
                await conn.add_listener(CHANNEL, self._notified)
                await self._reload(conn)
                while not conn.is_closed():
                    try:
                        async with asyncio.timeout(5):
                            await self._changed.wait()
                    except TimeoutError:
                        continue
                    self._changed.clear()
                    await self._reload(conn)
            except Exception as exc:  # noqa: BLE001 - the connection went; start over
                log.warning("registry view lost its connection: %s", exc,
                            extra={"action": "registry_disconnected"})
            finally:
                await conn.close()
            await asyncio.sleep(1)

    def _notified(self, *args: Any) -> None:
        self._changed.set()

    async def _reload(self, conn: Any) -> None:
        self.current = await load(conn)
        self.loaded.set()
        log.info("registry view loaded: %d devices, %d datastreams",
                 len(self.current.gateway_of), len(self.current.streams),
                 extra={"action": "registry_loaded"})
