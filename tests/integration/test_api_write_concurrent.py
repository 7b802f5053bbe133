"""Writes that arrive together, through the API on the real database: each is stored as if
it came alone, whether it meets another request, a deadlock or registry provisioning."""

from __future__ import annotations

import asyncio
from typing import Any

from core.database import connect
from core.queries import query
from devices.fleet import stockholm
from tests.integration.conftest import eventually
from tests.integration.readings import datastream as fleet_datastream
from tests.integration.writes import Api, new_datastream

PARALLEL = 12


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


async def test_create_observations_aborted_by_a_deadlock_runs_again_and_stores_every_row(
    api: Api, fleet_db: Any, db_url: str
) -> None:
    first, second = [(await new_datastream(api))["@iot.id"] for _ in range(2)]
    rival = await connect(db_url)
    try:
        # The rival only waits: the request is the one the database aborts.
        await rival.execute("SET deadlock_timeout = '60s'")
        async with rival.transaction():
            await rival.execute("SELECT 1 FROM datastreams WHERE id = $1 FOR UPDATE", second)
            request = asyncio.create_task(api.client.post("/v1.1/CreateObservations", json=[
                {"Datastream": {"@iot.id": stream}, "components": ["phenomenonTime", "result"],
                 "dataArray": [[f"2026-09-21T10:0{n}:00Z", n]]}
                for n, stream in enumerate((first, second))]))
            # The first row holds its Datastream (its foreign key), the second waits for
            # the rival's; the rival then waits for the first: a deadlock.
            await eventually(lambda: _waiting_for_a_lock(rival))
            await rival.execute("SELECT 1 FROM datastreams WHERE id = $1 FOR UPDATE", first)
        response = await request
    finally:
        await rival.close()
    assert response.status_code == 201, response.text
    assert all(link.startswith("http://city/v1.1/Observations(") for link in response.json())
    assert await fleet_db.fetchval(
        "SELECT count(*) FROM observations WHERE datastream_id = ANY($1::bigint[])",
        [first, second]) == 2


async def _waiting_for_a_lock(conn: Any) -> bool:
    return bool(await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"))


async def test_an_observation_takes_the_feature_provisioning_gives_its_location_meanwhile(
    api: Api, fleet_db: Any, db_url: str
) -> None:
    device = next(d for d in stockholm().devices if d.device_id == "aq-hornsgatan-108")
    stream = await fleet_datastream(fleet_db, device.device_id, "no2")
    # The device's feature stands for its Location no longer, as after the Location moved.
    feature = await fleet_db.fetchval(
        "UPDATE features_of_interest SET location_id = NULL WHERE key = $1 RETURNING id",
        f"device:{device.device_id}")
    provisioning = await connect(db_url)
    try:
        async with provisioning.transaction():
            # Provisioning, which takes no advisory lock, gives it back to the Location ...
            await provisioning.execute(
                query("registry", "upsert_device_places"), [device.device_id],
                [device.name], [device.longitude], [device.latitude])
            request = asyncio.create_task(api.client.post(
                f"/v1.1/Datastreams({stream})/Observations",
                json={"phenomenonTime": "2026-09-21T10:00:00Z", "result": 23.4}))
            # ... while the request, finding none, makes one and waits on its unique key.
            await eventually(lambda: _waiting_for_a_lock(provisioning))
        response = await request
    finally:
        await provisioning.close()
    assert response.status_code == 201, response.text
    taken = await api.get(f"/v1.1/Observations({response.json()['@iot.id']})/FeatureOfInterest")
    assert taken["@iot.id"] == feature
    assert await fleet_db.fetchval(
        "SELECT count(*) FROM features_of_interest WHERE key IS NULL") == 0
