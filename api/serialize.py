"""Rows to SensorThings JSON: @iot.id, @iot.selfLink, properties, navigation links."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from api.entities import EntityType


def entity_json(
    row: dict[str, Any], entity: EntityType, base: str, select: list[str] | None
) -> dict[str, Any]:
    """One entity as the standard shows it."""
    out: dict[str, Any] = {}
    self_link = f"{base}/{entity.set_name}({row['id']})"
    if select is None or "id" in select:
        out["@iot.id"] = row["id"]
        out["@iot.selfLink"] = self_link
    for name, prop in entity.props.items():
        if name not in row or (select is not None and name not in select):
            continue
        if row[name] is None and prop.optional:
            continue  # absent, whether selected or not: no null where an object belongs
        out[name] = value_json(row[name])
    for nav in entity.navs:
        if select is None or nav in select:
            out[f"{nav}@iot.navigationLink"] = f"{self_link}/{nav}"
    return out


def value_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, asyncpg.Range):
        # A time interval; one without an upper bound is an instant (an Observation's
        # phenomenonTime without an end).
        if value.upper is None:
            return value_json(value.lower)
        return f"{value_json(value.lower)}/{value_json(value.upper)}"
    return value
