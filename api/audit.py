"""The audit log: one row per write request, naming the key and agency that made it.

A row says who (key_id, agency), over which channel (http or mqtt), what (the action, the
method and path or topic as target, and the entities touched, by entity set and id) and how
it ended (the HTTP status). A write that succeeds is logged in its own transaction, so the
row and the change commit together; one that is refused is logged after the rollback. Key
text never reaches the log: a row holds the key_id only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from api.principal import Principal
from core.queries import query

log = logging.getLogger(__name__)

ACTIONS = {"POST": "create", "PATCH": "update", "PUT": "update", "DELETE": "delete"}


def action_of(method: str) -> str:
    """The audit action of an HTTP method of a write."""
    return ACTIONS.get(method.upper(), method.lower())


def entities(keys: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    """(entity set, id) pairs as {entity set: [ids]}, each list sorted."""
    out: dict[str, set[int]] = {}
    for entity_set, entity_id in keys:
        out.setdefault(entity_set, set()).add(entity_id)
    return {name: sorted(ids) for name, ids in sorted(out.items())}


async def record(conn: Any, who: Principal, channel: str, action: str, target: str,
                 touched: dict[str, list[int]], status: int,
                 agency_id: int | None = None) -> None:
    """Add one row; `agency_id` stands in for the principal's when it names none (MQTT)."""
    await conn.execute(query("api_access", "insert_audit"), who.key_id,
                       who.agency_id if who.agency_id is not None else agency_id, channel,
                       action, target, touched, status)


async def record_refusal(pool: Any, who: Principal, channel: str, action: str, target: str,
                         status: int) -> None:
    """Add the row of a write that was refused or failed (after its rollback); a failure
    to log is logged, not raised, so that the client still gets the write's own error."""
    try:
        async with pool.acquire() as conn:
            await record(conn, who, channel, action, target, {}, status)
    except Exception:  # the original error matters more than the audit row
        log.exception("audit row of a refused write could not be stored",
                      extra={"action": "audit_failed"})
