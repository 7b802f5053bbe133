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
    assert (stored, [r.code for r in refused]) == (2, ["database"])
    assert "999999" in refused[0].payload.decode()
    # The failed attempt did not break the connection's staging table.
    assert await writer.write(batch([known] * 5)) == 3  # times T0..T0+4; T0, T0+2 stored
    assert await fleet_db.fetchval("SELECT count(*) FROM observations") == 5
    assert await fleet_db.fetchval("SELECT count(*) FROM rejected_messages") == 1
