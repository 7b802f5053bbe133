"""An app developer's live feed: every new Observation of one Datastream as it is stored,
through the SensorThings MQTT extension. Run it against `stadspuls up` with an API key in
STADSPULS_KEY (`stadspuls keys create ...`; the broker admits no anonymous client):

    STADSPULS_KEY=sp_... .venv/bin/python docs/examples/live.py DATASTREAM_ID [COUNT] [MQTT_PORT]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import aiomqtt


async def main(key: str, datastream: int, count: int, port: int) -> None:
    topic = f"v1.1/Datastreams({datastream})/Observations"
    # The key logs in as its key id, the part between the first two underscores.
    async with aiomqtt.Client("127.0.0.1", port, username=key.split("_")[1], password=key,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(topic)
        print(f"subscribed to {topic}")
        seen = 0
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            obs = json.loads(message.payload)
            print(f"{obs['phenomenonTime']}  {obs['result']}  {obs['@iot.selfLink']}")
            seen += 1
            if seen == count:
                return


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(main(os.environ["STADSPULS_KEY"], args[0], args[1] if len(args) > 1 else 3,
                     args[2] if len(args) > 2 else 11883))
