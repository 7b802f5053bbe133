"""A reject flood (150 messages of 7,500 nameless records), measured on a stack of its own.

One device publishes 150 messages of 60 kB, each a pack of 7,500 nameless records; right
after them another device publishes one good reading. `stadspuls ingest` runs as a process
of its own, so its memory is its own. Printed: the rows and bytes the flood left in
rejected_messages, the refused records they account for, ingest's peak resident set, and
how long the good reading behind the flood waited to be stored (the stall).

    .venv/bin/python -m tests.reject_flood [--messages 150] [--records 7500]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiomqtt

from core.database import connect
from deploy.ports import free_port, http_ok
from deploy.settings import StackSettings
from deploy.stack import LocalStack, temporary_state_dir
from deploy.system import ensure_system
from devices.fleet import stockholm
from ingest.settings import IngestSettings

FLOODER = "aq-hornsgatan-108"
BYSTANDER = "aq-sveavagen-59"


def flood_payload(records: int) -> bytes:
    """A pack of `records` records without a name: each is refused on its own."""
    return b"[" + b",".join([b'{"v":1}'] * records) + b"]"


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _until(check: Any, within: float) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            raise TimeoutError(f"not done within {within} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def run(messages: int, records: int) -> dict[str, float]:
    """Publish the flood to a fresh stack; the figures."""
    state = temporary_state_dir("stadspuls-flood-")
    settings = StackSettings(state_dir=state, db_port=free_port(), mqtt_port=free_port(),
                             mqtt_auth=False, ingest_metrics_port=free_port())
    stack = LocalStack(settings, ensure_system())
    await stack.start()
    ingest: subprocess.Popen[bytes] | None = None
    try:
        await stack.provision_fleet(stockholm())
        tag = f"flood-{uuid.uuid4().hex[:8]}"
        command = IngestSettings(
            database_url=settings.database_url, mqtt_port=settings.mqtt_port,
            mqtt_client_id=tag, ingest_metrics_port=settings.ingest_metrics_port,
            notify_topics="off",
        ).command()
        with (state / "logs" / "flood-ingest.log").open("ab") as log:
            ingest = subprocess.Popen([sys.executable, "-m", "deploy", *command],
                                      stdout=log, stderr=subprocess.STDOUT)
        await _until(lambda: _async(http_ok(settings.ingest_metrics_port, "/healthz")), 60)
        conn = await connect(settings.database_url)
        payload = flood_payload(records)
        async with aiomqtt.Client("127.0.0.1", settings.mqtt_port,
                                  max_queued_outgoing_messages=messages + 10) as client:
            for _ in range(messages):
                await client.publish(f"devices/{FLOODER}/senml", payload, qos=1)
            sent = time.monotonic()
            good = (f'[{{"bn":"urn:dev:{BYSTANDER}:","n":"no2","u":"ug/m3","v":12.5,'
                    f'"t":{time.time() - 60:.0f}}}]')
            await client.publish(f"devices/{BYSTANDER}/senml", good, qos=1)

        async def stored() -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM observations"))

        await _until(stored, 600)
        stall = time.monotonic() - sent

        async def settled() -> bool:
            return _unacknowledged(settings.ingest_metrics_port) == 0

        await _until(settled, 600)
        figures = await _rejects(conn)
        figures.update(stall_s=stall, ingest_peak_rss_mb=_peak_rss_mb(ingest.pid),
                       message_bytes=len(payload))
        await conn.close()
        return figures
    finally:
        if ingest is not None:
            ingest.terminate()
            ingest.wait(30)
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


async def _async(value: Any) -> Any:
    return value


def _unacknowledged(port: int) -> float | None:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    for line in body.decode().splitlines():
        if line.startswith("stadspuls_ingest_unacknowledged_messages "):
            return float(line.split()[1])
    return None


async def _rejects(conn: Any) -> dict[str, float]:
    has_records = await conn.fetchval(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'rejected_messages' AND column_name = 'records'")
    refused = "sum(records)" if has_records else "count(*)"
    row = await conn.fetchrow(
        f"SELECT count(*) AS rows, {refused} AS refused, "
        "pg_total_relation_size('rejected_messages') AS bytes FROM rejected_messages")
    return {"reject_rows": row["rows"], "refused_records": row["refused"] or 0,
            "rejects_mb": row["bytes"] / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=150)
    parser.add_argument("--records", type=int, default=7500)
    args = parser.parse_args()
    figures = asyncio.run(run(args.messages, args.records))
    for name, value in figures.items():
        print(f"{name:20} {value:,.1f}" if isinstance(value, float) else f"{name:20} {value:,}")


if __name__ == "__main__":
    main()
