"""An analyst's session with the readings API: the street stations' NO2 over the last day,
hourly, and the hours above 40 µg/m³. Run it against `stadspuls up`:

    .venv/bin/python docs/examples/analyst.py [http://127.0.0.1:8080]
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import httpx


def main(api: str) -> None:
    with httpx.Client(base_url=api, timeout=30) as client:
        streams = client.get("/v1.1/Datastreams", params={
            "$filter": "ObservedProperty/name eq 'NO2' and "
                       "Thing/properties/site_role eq 'street'",
            "$select": "id,name", "$orderby": "name",
        }).raise_for_status().json()["value"]
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(hours=24)
        for stream in streams:
            hours = client.get(f"/api/Datastreams({stream['@iot.id']})/series", params={
                "interval": "1 hour", "start": start.isoformat(), "end": end.isoformat(),
            }).raise_for_status().json()["value"]
            high = [h["time"][11:16] for h in hours if h["avg"] is not None and h["avg"] > 40]
            mean = sum(h["avg"] * h["count"] for h in hours) / max(
                1, sum(h["count"] for h in hours))
            print(f"{stream['name']}: {len(hours)} hours, mean {mean:.1f} µg/m³, "
                  f"hours above 40: {', '.join(high) or 'none'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080")
