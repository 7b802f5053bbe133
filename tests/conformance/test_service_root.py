"""The service root claims exactly the conformance classes this suite walks, and names
the MQTT endpoint of the MQTT extension."""

from __future__ import annotations

import importlib
import pkgutil

import httpx

import tests.conformance
from tests.conformance.conftest import get


def walked_classes() -> set[str]:
    found = set()
    for module in pkgutil.iter_modules(tests.conformance.__path__):
        loaded = importlib.import_module(f"tests.conformance.{module.name}")
        if hasattr(loaded, "CONFORMANCE_CLASS"):
            found.add(loaded.CONFORMANCE_CLASS)
    return found


async def test_the_claimed_conformance_classes_are_those_the_suite_walks(
    api: httpx.AsyncClient,
) -> None:
    root = await get(api, "/v1.1")
    claimed = set(root["serverSettings"]["conformance"])
    walked = walked_classes()
    assert len(walked) == 8
    assert claimed == walked
