"""The writer on the real database: a row the database refuses costs only that row."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from ingest.mapping import Mapped
from ingest.writer import BatchWriter

T0 = 1_790_000_000.0


def batch(datastreams: list[int]) -> Mapped:
    mapped = Mapped()
    for k, datastream in enumerate(datastreams):
        mapped.add(T0 + k, datastream, number=float(k))
    return mapped


@pytest.mark.parametrize("method", ["copy", "unnest"])
async def test_a_refused_row_is_rejected_alone_and_the_writer_goes_on(
    fleet_db: Any, method: str
) -> None:
    known = int(await fleet_db.fetchval("SELECT min(id) FROM datastreams"))
    writer = BatchWriter(fleet_db, method)
    mixed = batch([known, 999_999, known])  # no datastream 999999: a foreign-key refusal
    with pytest.raises(asyncpg.IntegrityConstraintViolationError):
        await writer.write(mixed)
    stored, refused = await writer.write_row_by_row(mixed)
    assert (stored.count, [r.code for r in refused]) == (2, ["database"])
    assert "999999" in refused[0].payload.decode()
    # The failed attempt did not break the connection's staging table.
    assert (await writer.write(batch([known] * 5))).count == 3  # T0, T0+2 stored before
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == 5
    assert await fleet_db.fetchval("SELECT count(*) FROM rejected_messages") == 1


@pytest.mark.parametrize("method", ["copy", "unnest"])
async def test_each_batch_widens_the_time_and_area_of_its_datastreams(
    fleet_db: Any, method: str
) -> None:
    target = await fleet_db.fetchrow(
        "SELECT ds.id, f.id AS feature FROM datastreams ds JOIN things t ON t.id = ds.thing_id "
        "JOIN features_of_interest f ON f.key = 'device:' || t.device_id ORDER BY ds.id LIMIT 1")
    datastream, feature = target["id"], target["feature"]
    writer = BatchWriter(fleet_db, method)

    def readings(*times: float) -> Mapped:
        mapped = Mapped()
        for t in times:
            mapped.add(t, datastream, number=1.0, feature=feature)
        return mapped

    await writer.write(readings(T0 + 60, T0))
    await writer.write(readings(T0 + 30))  # inside: nothing to widen
    await writer.write_row_by_row(readings(T0 - 60))  # the isolating path widens too
    span = await fleet_db.fetchrow(
        "SELECT extract(epoch FROM phenomenon_time_start)::float8 AS first, "
        "extract(epoch FROM phenomenon_time_end)::float8 AS last, "
        "ST_Equals(observed_area, (SELECT feature FROM features_of_interest WHERE id = $2)) "
        "AS area_is_the_feature FROM datastreams WHERE id = $1", datastream, feature)
    assert tuple(span) == (T0 - 60, T0 + 60, True)
