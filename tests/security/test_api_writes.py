"""Claims: writes need a writer's or admin's key; a writer changes only its own agency's
entities, however the request is put (path, deep insert, link by @iot.id, $batch,
CreateObservations); every write request leaves an audit row naming key and agency."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from api import principal
from api.operations import FORBIDDEN_BY_POLICY
from api.principal import Principal
from tests.security.api_fixtures import World, access

__all__ = ["access"]  # fixtures

T = "2026-10-01T00:00:00Z"


def key_id(world: World, who: str) -> str:
    return world.keys[who].split("_")[1]


async def observation_count(world: World) -> int:
    return int(await world.db.fetchval("SELECT count(*) FROM observations"))


async def audit_rows(world: World) -> list[dict[str, Any]]:
    return [{**r, "entities": json.loads(r["entities"])} for r in await world.db.fetch(
        "SELECT a.key_id, g.code AS agency, channel, action, target, entities, status "
        "FROM audit_log a LEFT JOIN agencies g ON g.id = a.agency_id ORDER BY a.id")]


def sensor_body() -> dict[str, Any]:
    return {"name": "Loop", "description": "d", "encodingType": "text/html", "metadata": "m"}


def location_body(**links: Any) -> dict[str, Any]:
    return {"name": "Elsewhere", "description": "d", "encodingType": "application/geo+json",
            "location": {"type": "Point", "coordinates": [18.0, 59.3]}, **links}


async def traffic_history(world: World) -> int:
    """A HistoricalLocation of the traffic agency's Thing, at its one Location."""
    history = await world.db.fetchval(
        "INSERT INTO historical_locations (thing_id, time) "
        "VALUES ($1, '2026-09-01T00:00:00Z') RETURNING id", world.ids["traffic_thing"])
    await world.db.execute(
        "INSERT INTO historical_location_locations (historical_location_id, location_id) "
        "SELECT $1, location_id FROM thing_locations WHERE thing_id = $2",
        history, world.ids["traffic_thing"])
    return int(history)


async def history_locations(world: World, history: int) -> int:
    return int(await world.db.fetchval(
        "SELECT count(*) FROM historical_location_locations WHERE historical_location_id = $1",
        history))


async def thing_locations(world: World, thing: str) -> list[str]:
    return [r["name"] for r in await world.db.fetch(
        "SELECT l.name FROM thing_locations tl JOIN locations l ON l.id = tl.location_id "
        "WHERE tl.thing_id = $1 ORDER BY l.name", world.ids[thing])]


async def test_a_write_without_a_key_is_401_and_stores_nothing(access: World) -> None:
    before = await observation_count(access)
    async with access.as_(None) as anyone:
        response = await anyone.post(
            f"/v1.1/Datastreams({access.ids['env_open']})/Observations",
            json={"phenomenonTime": T, "result": 1})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await observation_count(access) == before


async def test_a_reader_key_may_not_write_403_and_nothing_is_written(access: World) -> None:
    before = await observation_count(access)
    stream = access.ids["env_open"]
    async with access.as_("env_reader") as reader:
        answers = [
            await reader.post(f"/v1.1/Datastreams({stream})/Observations",
                              json={"phenomenonTime": T, "result": 1}),
            await reader.patch(f"/v1.1/Things({access.ids['env_thing']})", json={"name": "x"}),
            await reader.delete(f"/v1.1/Datastreams({stream})"),
            await reader.post("/v1.1/CreateObservations", json=[
                {"Datastream": {"@iot.id": stream}, "components": ["phenomenonTime", "result"],
                 "dataArray": [[T, 1]]}]),
        ]
    assert [a.status_code for a in answers] == [403, 403, 403, 403]
    assert all(a.json()["code"] == "forbidden" for a in answers)
    assert await observation_count(access) == before
    assert await access.db.fetchval("SELECT name FROM things WHERE id = $1",
                                    access.ids["env_thing"]) == "Env mast"


async def test_a_writer_writes_its_agency_and_new_things_are_its_agency(access: World) -> None:
    async with access.as_("env_writer") as writer:
        made = await writer.post(f"/v1.1/Datastreams({access.ids['env_open']})/Observations",
                                 json={"phenomenonTime": T, "result": 7})
        thing = await writer.post("/v1.1/Things", json={
            "name": "New mast", "description": "d",
            "Datastreams": [{"name": "n", "description": "d",
                             "observationType": "measurement",
                             "unitOfMeasurement": {"name": "c", "symbol": "c",
                                                   "definition": "c"},
                             "Sensor": sensor_body(),
                             "ObservedProperty": {"@iot.id": access.ids["property"]}}]})
    assert made.status_code == 201, made.text
    assert thing.status_code == 201, thing.text
    owners = await access.db.fetch(
        "SELECT a.code FROM things t JOIN agencies a ON a.id = t.agency_id WHERE t.id = $1 "
        "UNION ALL SELECT a.code FROM datastreams d JOIN agencies a ON a.id = d.agency_id "
        "WHERE d.thing_id = $1", thing.json()["@iot.id"])
    assert [r["code"] for r in owners] == ["env", "env"]


async def test_a_writer_may_not_touch_another_agencys_entities(access: World) -> None:
    before = await observation_count(access)
    ids = access.ids
    foreign_observation = await access.db.fetchval(
        "SELECT min(id) FROM observations WHERE datastream_id = $1", ids["traffic_open"])
    async with access.as_("env_writer") as writer:
        answers = {
            "observation in open foreign stream": await writer.post(
                f"/v1.1/Datastreams({ids['traffic_open']})/Observations",
                json={"phenomenonTime": T, "result": 1}),
            "linked by id": await writer.post("/v1.1/Observations", json={
                "phenomenonTime": T, "result": 1,
                "Datastream": {"@iot.id": ids["traffic_open"]}}),
            "datastream under foreign thing": await writer.post(
                f"/v1.1/Things({ids['traffic_thing']})/Datastreams", json={
                    "name": "n", "description": "d", "observationType": "measurement",
                    "unitOfMeasurement": {"name": "c", "symbol": "c", "definition": "c"},
                    "Sensor": {"@iot.id": ids["sensor"]},
                    "ObservedProperty": {"@iot.id": ids["property"]}}),
            "foreign thing renamed": await writer.patch(
                f"/v1.1/Things({ids['traffic_thing']})", json={"name": "mine"}),
            "foreign datastream moved by deep update": await writer.patch(
                f"/v1.1/Things({ids['env_thing']})",
                json={"Datastreams": [{"@iot.id": ids["traffic_open"]}]}),
            "foreign observation deleted": await writer.delete(
                f"/v1.1/Observations({foreign_observation})"),
            "catalogue changed": await writer.patch(f"/v1.1/Sensors({ids['sensor']})",
                                                    json={"name": "mine"}),
            "foreign thing moved by a new location": await writer.post("/v1.1/Locations", json={
                "name": "Elsewhere", "description": "d", "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [18.0, 59.3]},
                "Things": [{"@iot.id": ids["traffic_thing"]}]}),
        }
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 403)
    assert await observation_count(access) == before
    assert await access.db.fetchval("SELECT count(*) FROM datastreams WHERE thing_id = $1",
                                    ids["env_thing"]) == 1
    assert await access.db.fetchval("SELECT name FROM sensors") == "counter"
    assert await access.db.fetchval("SELECT count(*) FROM locations") == 1


async def test_a_deep_insert_cannot_reach_into_another_agency(access: World) -> None:
    async with access.as_("env_writer") as writer:
        response = await writer.post("/v1.1/Sensors", json={
            **sensor_body(), "Datastreams": [{
                "name": "n", "description": "d", "observationType": "measurement",
                "unitOfMeasurement": {"name": "c", "symbol": "c", "definition": "c"},
                "Thing": {"@iot.id": access.ids["traffic_thing"]},
                "ObservedProperty": {"@iot.id": access.ids["property"]}}]})
    assert response.status_code == 403, response.text
    assert await access.db.fetchval("SELECT count(*) FROM sensors") == 1  # rolled back


async def test_a_restricted_datastream_of_another_agency_is_absent_for_writes(
    access: World,
) -> None:
    async with access.as_("env_writer") as writer:
        patched = await writer.patch(f"/v1.1/Datastreams({access.ids['secret']})",
                                     json={"name": "x"})
        linked = await writer.post("/v1.1/Observations", json={
            "phenomenonTime": T, "result": 1, "Datastream": {"@iot.id": access.ids["secret"]}})
    assert patched.status_code == 404
    assert linked.status_code == 400  # "there is no Datastream with @iot.id …"


async def test_an_admin_writes_everywhere(access: World) -> None:
    async with access.as_("admin") as admin:
        made = await admin.post(f"/v1.1/Datastreams({access.ids['secret']})/Observations",
                                json={"phenomenonTime": T, "result": 2000})
        renamed = await admin.patch(f"/v1.1/Sensors({access.ids['sensor']})",
                                    json={"name": "loop"})
    assert (made.status_code, renamed.status_code) == (201, 200)


async def test_a_field_device_deleted_through_the_api_loses_its_broker_account(
    access: World,
) -> None:
    thing = access.ids["traffic_thing"]
    await access.db.execute("UPDATE things SET device_id = 'tc-deleted' WHERE id = $1", thing)
    await access.db.execute("INSERT INTO mqtt_accounts (username, kind, secret_hash) "
                            "VALUES ('tc-deleted', 'device', 'x')")
    async with access.as_("traffic_writer") as writer:
        deleted = await writer.delete(f"/v1.1/Things({thing})")
    assert deleted.status_code == 200
    assert await access.db.fetchval(
        "SELECT revoked_at IS NOT NULL FROM mqtt_accounts WHERE username = 'tc-deleted'")


async def test_batch_parts_and_create_observations_are_checked_one_by_one(
    access: World,
) -> None:
    ids = access.ids
    async with access.as_("env_writer") as writer:
        batch = (await writer.post("/v1.1/$batch", json={"requests": [
            {"id": "own", "method": "post", "url": f"Datastreams({ids['env_open']})/Observations",
             "body": {"phenomenonTime": T, "result": 1}},
            {"id": "foreign", "method": "post",
             "url": f"Datastreams({ids['traffic_open']})/Observations",
             "body": {"phenomenonTime": T, "result": 1}}]})).json()
        created = await writer.post("/v1.1/CreateObservations", json=[
            {"Datastream": {"@iot.id": ids["env_open"]}, "components": ["phenomenonTime", "result"],
             "dataArray": [["2026-10-02T00:00:00Z", 3]]},
            {"Datastream": {"@iot.id": ids["traffic_open"]},
             "components": ["phenomenonTime", "result"],
             "dataArray": [["2026-10-02T00:00:00Z", 3]]}])
    assert [r["status"] for r in batch["responses"]] == [201, 403]
    assert created.status_code == 201
    assert created.json()[0].startswith("http://city/v1.1/Observations(")
    assert created.json()[1] == "error"


async def test_write_requests_leave_audit_rows_naming_key_and_agency(access: World) -> None:
    stream = access.ids["env_open"]
    async with access.as_("env_writer") as writer:
        made = (await writer.post(f"/v1.1/Datastreams({stream})/Observations",
                                  json={"phenomenonTime": T, "result": 1})).json()
        await writer.patch(f"/v1.1/Observations({made['@iot.id']})", json={"result": 2})
        await writer.post("/v1.1/$batch", json={"requests": [
            {"id": "1", "method": "delete", "url": f"Observations({made['@iot.id']})"}]})
        await writer.post("/v1.1/CreateObservations", json=[
            {"Datastream": {"@iot.id": stream}, "components": ["phenomenonTime", "result"],
             "dataArray": [["2026-10-03T00:00:00Z", 4]]}])
        await writer.patch(f"/v1.1/Things({access.ids['traffic_thing']})", json={"name": "x"})
    rows = await audit_rows(access)
    me = key_id(access, "env_writer")
    assert [(r["key_id"], r["agency"], r["channel"]) for r in rows] == [(me, "env", "http")] * 5
    assert [(r["action"], r["status"]) for r in rows] == [
        ("create", 201), ("update", 200), ("batch", 200), ("create_observations", 201),
        ("update", 403)]
    assert rows[0]["target"] == f"POST /v1.1/Datastreams({stream})/Observations"
    assert rows[0]["entities"]["Observations"] == [made["@iot.id"]]
    assert rows[2]["entities"] == {"Observations": [made["@iot.id"]]}
    assert len(rows[3]["entities"]["Observations"]) == 1
    assert rows[4]["entities"] == {}
    assert all(access.keys["env_writer"] not in str(r) for r in rows)


async def test_a_writer_may_not_add_a_location_to_another_agencys_history(
    access: World,
) -> None:
    history = await traffic_history(access)
    link = {"HistoricalLocations": [{"@iot.id": history}]}
    async with access.as_("env_writer") as writer:
        answers = [
            await writer.post("/v1.1/Locations", json=location_body(**link)),
            await writer.post(f"/v1.1/Things({access.ids['env_thing']})/Locations",
                              json=location_body(**link)),
        ]
    assert [a.status_code for a in answers] == [403, 403]
    assert [a.json()["message"] for a in answers] == [FORBIDDEN_BY_POLICY] * 2
    assert await history_locations(access, history) == 1
    assert await access.db.fetchval("SELECT count(*) FROM locations") == 1  # rolled back
    assert await thing_locations(access, "env_thing") == ["Odenplan"]


async def test_a_writer_may_not_give_another_agencys_thing_a_location(access: World) -> None:
    async with access.as_("env_writer") as writer:
        answer = await writer.post("/v1.1/Locations", json=location_body(
            Things=[{"@iot.id": access.ids["traffic_thing"]}]))
    assert answer.status_code == 403
    assert answer.json()["message"] == FORBIDDEN_BY_POLICY
    assert await thing_locations(access, "traffic_thing") == ["Odenplan"]


async def test_the_owner_and_an_admin_link_locations_to_a_things_history(
    access: World,
) -> None:
    history = await traffic_history(access)
    for who in ("traffic_writer", "admin"):
        async with access.as_(who) as client:
            made = await client.post("/v1.1/Locations", json=location_body(
                name=who, HistoricalLocations=[{"@iot.id": history}],
                Things=[{"@iot.id": access.ids["traffic_thing"]}]))
        assert made.status_code == 201, made.text
    assert await history_locations(access, history) == 3
    assert await thing_locations(access, "traffic_thing") == ["admin"]


@pytest.mark.parametrize("statement", [
    "INSERT INTO thing_locations (thing_id, location_id) "
    "SELECT $1, location_id FROM thing_locations LIMIT 1",
    "INSERT INTO historical_location_locations (historical_location_id, location_id) "
    "SELECT h.id, l.id FROM historical_locations h, locations l "
    "WHERE h.thing_id = $1 AND l.name = 'Mine'",
])
async def test_the_database_refuses_a_writer_a_link_of_another_agencys_thing(
    access: World, statement: str,
) -> None:
    await traffic_history(access)
    await access.db.execute("INSERT INTO locations (name, location) "
                            "VALUES ('Mine', ST_SetSRID(ST_MakePoint(18, 59), 4326))")
    await access.db.execute("DELETE FROM thing_locations WHERE thing_id = $1",
                            access.ids["traffic_thing"])
    writer = Principal(key_id=None, agency_id=access.ids["env"], agency_code="env",
                       role="writer")
    token = principal.current.set(writer)
    try:
        async with access.app.state.store.pool.acquire() as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement, access.ids["traffic_thing"])
    finally:
        principal.current.reset(token)
