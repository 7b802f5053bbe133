"""$count=true: exact for small results, the planner's estimate for large ones.

Counting 23 million Observations exactly takes seconds, however the question is put. So the
count first counts at most `threshold + 1` rows, which costs little; at or below the
threshold that is the answer. Above it the answer is an estimate: TimescaleDB's
`approximate_row_count` for the whole Observations hypertable, otherwise the row estimate
of the planner for the filtered query (EXPLAIN), and never less than `threshold + 1`, which
is known to be true. The standard allows it: clients "should be aware that the count
returned inline may not exactly equal the actual number of items".

Row-level security hides restricted Datastreams and their Observations from those who may
not see them, but statistics know no principal: TimescaleDB's estimate counts every row,
and the planner cannot tell how many rows the policy removes. So when something is hidden
from the request's principal, the estimate is the planner's for the query with the hidden
Datastreams excluded by value, which its statistics can weigh.
"""

from __future__ import annotations

import json
from typing import Any

from core.queries import query


async def count(conn: Any, tables: str, condition: str, params: list[Any], threshold: int,
                hypertable: str | None = None, datastream_column: str | None = None) -> int:
    """The number of rows of `tables` (FROM text) satisfying `condition`.

    Args:
        conn: an asyncpg connection.
        tables: the FROM clause body, e.g. "observations e LEFT JOIN …".
        condition: the WHERE condition, with placeholders for `params`.
        params: the parameter values.
        threshold: up to this many rows the count is exact.
        hypertable: the table's name when the query reads all of one hypertable, which
            TimescaleDB can estimate from its chunks' statistics.
        datastream_column: the column of the counted rows that names their Datastream
            (e.datastream_id of Observations, e.id of Datastreams), for estimates that
            leave out what the principal may not see.

    Returns:
        The exact count up to `threshold`, an estimate above it.
    """
    limit = f"${len(params) + 1}"
    exact = await conn.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM {tables} WHERE {condition} LIMIT {limit}) s",
        *params, threshold + 1)
    if exact <= threshold:
        return int(exact)
    hidden = (await conn.fetchval(query("api_access", "hidden_datastreams"))
              if datastream_column is not None else None)
    if hidden:
        condition = (f"({condition}) AND NOT ({datastream_column} = "
                     f"ANY(${len(params) + 1}::bigint[]))")
        params = [*params, hidden]
    if hypertable is not None and not hidden:
        estimate = await conn.fetchval("SELECT approximate_row_count($1::regclass)", hypertable)
    else:
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {tables} "
                                   f"WHERE {condition}", *params)
        estimate = _plan_rows(plan)
    return max(int(estimate or 0), threshold + 1)


def _plan_rows(plan: Any) -> float:
    document = json.loads(plan) if isinstance(plan, str) else plan
    return float(document[0]["Plan"]["Plan Rows"])
