"""Writes that arrive together, through the API on the real database: each is stored as if
it came alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.writes import Api, new_datastream, running_api

PARALLEL = 12


@pytest.fixture
async def api(fleet_db: Any, db_url: str) -> AsyncIterator[Api]:
    async with running_api(db_url) as running:
        yield running


async def test_parallel_observations_of_a_new_datastream_all_share_one_new_feature(
    api: Api, fleet_db: Any
) -> None:
    stream = (await new_datastream(api))["@iot.id"]
    features_before = await fleet_db.fetchval("SELECT count(*) FROM features_of_interest")
    responses = await asyncio.gather(*(
        api.client.post(f"/v1.1/Datastreams({stream})/Observations",
                        json={"phenomenonTime": f"2026-09-21T10:{n:02}:00Z", "result": n})
        for n in range(PARALLEL)))
    assert [r.status_code for r in responses] == [201] * PARALLEL, [r.text for r in responses]
    features = await fleet_db.fetch(
        "SELECT DISTINCT f.id, f.location_id FROM observations o "
        "JOIN features_of_interest f ON f.id = o.feature_id WHERE o.datastream_id = $1", stream)
    location = await fleet_db.fetchval(
        "SELECT tl.location_id FROM thing_locations tl JOIN datastreams ds "
        "ON ds.thing_id = tl.thing_id WHERE ds.id = $1", stream)
    assert [r["location_id"] for r in features] == [location]
    assert await fleet_db.fetchval("SELECT count(*) FROM features_of_interest") \
        == features_before + 1
    assert await fleet_db.fetchval(
        "SELECT count(*) FROM observations WHERE datastream_id = $1", stream) == PARALLEL
    span = await api.get(f"/v1.1/Datastreams({stream})?$select=phenomenonTime")
    assert span["phenomenonTime"] == "2026-09-21T10:00:00Z/2026-09-21T10:11:00Z"


async def test_parallel_observations_at_two_new_places_in_a_new_week_all_succeed(
    api: Api, fleet_db: Any
) -> None:
    streams = [(await new_datastream(api))["@iot.id"] for _ in range(2)]  # two Locations
    responses = await asyncio.gather(*(
        api.client.post(f"/v1.1/Datastreams({streams[n % 2]})/Observations",
                        json={"phenomenonTime": f"2027-03-01T10:{n:02}:00Z", "result": n})
        for n in range(PARALLEL)))
    assert [r.status_code for r in responses] == [201] * PARALLEL, [r.text for r in responses]
