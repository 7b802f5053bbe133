"""Provisioning: write a fleet into the registry, idempotently, in one transaction.

Each entity has a natural key (agency code, gateway and device ids, the model's sensor, the
observed property's key, the device's record names), so a second run updates in place and
creates nothing new. All rows of a kind go in one statement, so thousands of devices take
seconds, not minutes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from core.queries import query
from devices.catalogue import PLAUSIBLE, model
from devices.fleet import Fleet
from devices.models import ObservedProperty, Stream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provisioned:
    """How many entities of each kind the fleet has, and how many were new."""

    counts: dict[str, tuple[int, int]]

    def summary(self) -> str:
        return ", ".join(f"{total} {kind} ({new} new)" for kind, (total, new) in
                         self.counts.items())


async def provision(conn: Any, fleet: Fleet) -> Provisioned:
    """Create or update every agency, gateway, device and datastream of `fleet`.

    Args:
        conn: an asyncpg connection to a migrated database.
        fleet: what to provision.

    Returns:
        Per kind of entity, the number in the fleet and the number created now.
    """
    streams = {d.device_id: model(d.model).streams(d) for d in fleet.devices}
    properties = _observed_properties(streams)
    models = sorted({d.model for d in fleet.devices})
    async with conn.transaction():
        counts = {
            "agencies": await _upsert(conn, "upsert_agencies", [
                [a.code for a in fleet.agencies], [a.name for a in fleet.agencies],
                [a.description for a in fleet.agencies]]),
            "gateways": await _upsert(conn, "upsert_gateways", [
                [g.gateway_id for g in fleet.gateways], [g.agency for g in fleet.gateways],
                [g.name for g in fleet.gateways], [g.model for g in fleet.gateways]]),
            "observed properties": await _upsert(conn, "upsert_observed_properties", [
                [p.key for p in properties], [p.name for p in properties],
                [p.definition for p in properties], [p.description for p in properties],
                *_ranges(properties)]),
            "sensors": await _upsert(conn, "upsert_sensors", [
                models, [model(m).sensor_name for m in models],
                [model(m).sensor_description for m in models],
                [model(m).sensor_metadata for m in models]]),
            "devices": await _upsert(conn, "upsert_things", [
                [d.device_id for d in fleet.devices], [d.agency for d in fleet.devices],
                [d.name for d in fleet.devices], [d.description for d in fleet.devices],
                [json.dumps(d.properties) for d in fleet.devices],
                [d.model for d in fleet.devices], [d.gateway for d in fleet.devices]]),
        }
        ids = [d.device_id for d in fleet.devices]
        await conn.execute(
            query("registry", "upsert_device_places"), ids, [d.name for d in fleet.devices],
            [d.longitude for d in fleet.devices], [d.latitude for d in fleet.devices],
        )
        await conn.execute(query("registry", "link_device_locations"), ids)
        counts["datastreams"] = await _upsert(conn, "upsert_datastreams", _datastream_columns(
            fleet, streams))
    result = Provisioned(counts)
    log.info("provisioned fleet %s: %s", fleet.name, result.summary(),
             extra={"action": "fleet_provisioned"})
    return result


def _observed_properties(streams: dict[str, dict[str, Stream]]) -> list[ObservedProperty]:
    found = {s.observed_property.key: s.observed_property
             for per_device in streams.values() for s in per_device.values()}
    return [found[k] for k in sorted(found)]


def _ranges(properties: list[ObservedProperty]) -> list[list[Any]]:
    """Low, high and unit of each property's plausible range (None where it has none)."""
    ranges = [PLAUSIBLE.get(p.key) for p in properties]
    return [[r.low if r else None for r in ranges], [r.high if r else None for r in ranges],
            [r.unit if r else None for r in ranges]]


def _datastream_columns(
    fleet: Fleet, streams: dict[str, dict[str, Stream]]
) -> list[list[str]]:
    rows = []
    for device in fleet.devices:
        for s in streams[device.device_id].values():
            rows.append([
                device.device_id, s.record, f"{device.name} – {s.label}",
                f"{s.observed_property.description} at {device.name}", s.observation_type,
                s.unit.name, s.unit.symbol, s.unit.definition, s.unit.senml,
                s.observed_property.key, device.model,
                "restricted" if s.restricted else "open",
            ])
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 12


async def _upsert(conn: Any, name: str, columns: list[list[Any]]) -> tuple[int, int]:
    rows = await conn.fetch(query("registry", name), *columns)
    return len(rows), sum(1 for r in rows if r["inserted"])


async def list_devices(conn: Any) -> list[dict[str, Any]]:
    """Every provisioned field device, ordered by device id."""
    return [dict(r) for r in await conn.fetch(query("registry", "list_devices"))]
