"""The MQTT gateway: one connection that publishes for the devices registered behind it.

Its payload is one SenML pack holding each device's records under that device's own base
name, published on ``gateways/{gateway_id}/senml``; ingest checks that every device in it is
registered behind the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODEL_NAME = "fibre-gateway"


@dataclass(frozen=True)
class Gateway:
    """A gateway of a fleet."""

    gateway_id: str
    name: str
    agency: str
    model: str = MODEL_NAME


def topic(gateway_id: str) -> str:
    return f"gateways/{gateway_id}/senml"


def combine(packs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One gateway pack from the packs of several devices, each keeping its base name."""
    return [record for pack in packs for record in pack]
