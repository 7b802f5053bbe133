"""What a logged-in device or gateway may publish, checked by the broker and by ingest."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.conftest import eventually
from tests.security.conftest import SecureStack, no2, results

HORNSGATAN, SVEAVAGEN = "aq-hornsgatan-108", "aq-sveavagen-59"


async def test_a_device_publishing_on_another_devices_topic_stores_nothing(
    secure: SecureStack, secure_db: Any
) -> None:
    at = time.time() - 3600
    async with secure.client(HORNSGATAN) as device:
        # Speaking as Sveavägen on Sveavägen's topic: the broker drops it.
        await device.publish(f"devices/{SVEAVAGEN}/senml", no2(SVEAVAGEN, 66.6, at), qos=1)
        await device.publish(f"devices/{HORNSGATAN}/senml", no2(HORNSGATAN, 12.5, at), qos=1)

    async def own_reading_stored() -> bool:
        return 12.5 in await results(secure_db, HORNSGATAN)

    await eventually(own_reading_stored)
    assert 66.6 not in await results(secure_db, SVEAVAGEN)
    assert await secure_db.fetchval("SELECT count(*) FROM rejected_messages WHERE topic = $1",
                             f"devices/{SVEAVAGEN}/senml") == 0


async def test_a_gateway_speaking_for_a_device_not_behind_it_is_rejected_by_ingest(
    secure: SecureStack, secure_db: Any
) -> None:
    async with secure.client("gw-essingen") as gateway:
        await gateway.publish("gateways/gw-essingen/senml",
                              no2(HORNSGATAN, 77.7, time.time() - 7200), qos=1)

    async def rejected() -> bool:
        return bool(await secure_db.fetchval(
            "SELECT count(*) FROM rejected_messages WHERE code = 'not_behind_gateway'"))

    await eventually(rejected)
    reason = await secure_db.fetchval(
        "SELECT reason FROM rejected_messages WHERE code = 'not_behind_gateway'")
    assert "not registered behind gateway 'gw-essingen'" in reason
    assert 77.7 not in await results(secure_db, HORNSGATAN)
