"""Claim: an Observation created over MQTT (which the broker's ACL let through) is written to
the audit log on the mqtt channel, under the agency of its Datastream."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiomqtt

from api.settings import ApiSettings
from tests.integration.conftest import eventually
from tests.security.api_fixtures import WorldFactory, access_with

__all__ = ["access_with"]  # fixtures


async def test_an_observation_created_over_mqtt_is_audited_for_its_datastreams_agency(
    access_with: WorldFactory, mqtt_port: int, topic_prefix: str
) -> None:
    settings = {"mqtt_enabled": True, "mqtt_port": mqtt_port, "topic_prefix": f"{topic_prefix}/",
                "mqtt_client_id": f"api-{uuid.uuid4().hex[:8]}"}
    assert set(settings) <= set(ApiSettings.model_fields)
    async with access_with(**settings) as w:
        async with asyncio.timeout(20):
            await w.app.state.observation_listener.ready.wait()
        stream = w.ids["secret"]
        async with aiomqtt.Client("127.0.0.1", mqtt_port) as client:
            await client.publish(f"{topic_prefix}/v1.1/Datastreams({stream})/Observations",
                                 json.dumps({"phenomenonTime": "2026-10-01T00:00:00Z",
                                             "result": 5}), qos=1)

        async def audited() -> bool:
            return bool(await w.db.fetchval("SELECT count(*) FROM audit_log") > 0)

        await eventually(audited)
        row = await w.db.fetchrow(
            "SELECT a.key_id, g.code, a.channel, a.action, a.target, a.entities, a.status "
            "FROM audit_log a JOIN agencies g ON g.id = a.agency_id")
        made = await w.db.fetchval("SELECT id FROM observations WHERE datastream_id = $1 "
                                   "AND phenomenon_time = '2026-10-01T00:00:00Z'", stream)
    assert (row["key_id"], row["code"], row["channel"], row["action"], row["status"]) == (
        None, "traffic", "mqtt", "create", 201)
    assert row["target"] == f"v1.1/Datastreams({stream})/Observations"
    assert json.loads(row["entities"])["Observations"] == [made]
