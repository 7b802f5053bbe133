"""A retained message is never a reading: ingest rejects it (`retained`) and is not sent it
again when it subscribes anew, on a broker that keeps it (the test broker is anonymous and
has no plugin to refuse it)."""

from __future__ import annotations

import json
from typing import Any

from ingest.settings import IngestSettings
from tests.integration.conftest import Publisher, eventually, start_consumer, stop_consumer
from tests.integration.test_ingest import HORNSGATAN, T0, count, observations, pack


async def retained_rejects(db: Any) -> int:
    return int(await db.fetchval(
        "SELECT count(*) FROM rejected_messages WHERE code = 'retained'"))


async def test_a_retained_reading_is_rejected_once_and_never_stored_across_resubscriptions(
    fleet_db: Any, ingest_settings: IngestSettings, publisher: Publisher
) -> None:
    consumer, task = await start_consumer(ingest_settings)
    # A relative time: every copy would resolve anew.
    relative = json.dumps([{"bn": f"urn:dev:{HORNSGATAN}:", "n": "no2", "u": "ug/m3",
                            "v": 41.5, "t": -10}])
    await publisher.client.publish(f"{publisher.prefix}/devices/{HORNSGATAN}/senml",
                                   relative, qos=1, retain=True)

    async def rejected() -> bool:
        return await retained_rejects(fleet_db) == 1

    await eventually(rejected)
    markers = []
    for n in range(3):
        await stop_consumer(consumer, task)
        consumer, task = await start_consumer(ingest_settings)  # subscribes anew
        # Published after the subscription: anything sent on subscribing came before it.
        markers.append((T0 + n, 50.0 + n))
        await publisher.device(HORNSGATAN, pack(no2=(50.0 + n, T0 + n)))

        async def marker_stored(expected: int = n + 1) -> bool:
            return await count(fleet_db, "observations") >= expected

        await eventually(marker_stored)
    await stop_consumer(consumer, task)
    assert await observations(fleet_db) == markers
    assert await retained_rejects(fleet_db) == 1
    reason, device = await fleet_db.fetchrow(
        "SELECT reason, device_id FROM rejected_messages WHERE code = 'retained'")
    assert "retain flag" in reason
    assert device == HORNSGATAN
