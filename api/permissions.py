"""Who may write what, checked before a write so that the answer says why.

- without a key: nothing (401); a reader's key: nothing (403);
- a writer's key: the Things, Datastreams, Observations and HistoricalLocations of its own
  agency, and which Locations those Things and HistoricalLocations have; new Things belong
  to its agency. Catalogue entities (Sensors, ObservedProperties,
  Locations, FeaturesOfInterest) belong to no agency: writers may create them, only admins
  change or delete them;
- an admin's key: everything.

Row-level security in the database (migration 0008) holds the same rules for every row a
write touches, deep inserts and links by @iot.id included; a refusal there is a 403 too.
"""

from __future__ import annotations

from typing import Any

from api.entities import ENTITY_SETS
from api.errors import Forbidden, Unauthorized
from api.principal import Principal
from core.queries import query

CATALOGUE = ("Sensors", "ObservedProperties", "Locations", "FeaturesOfInterest")


def require_writer(who: Principal) -> None:
    """Raise unless `who` may write at all."""
    if who.role == "anonymous":
        raise Unauthorized("writing needs the API key of a writer or admin, sent as "
                           "'Authorization: Bearer <key>'")
    if not who.may_write:
        raise Forbidden(f"API key {who.key_id} is a {who.role}'s; writing needs a writer's "
                        "or admin's key")


async def check_change(conn: Any, who: Principal, entity_set: str, entity_id: int) -> None:
    """Raise unless `who` may update or delete the entity (which the caller found).

    Raises:
        Unauthorized: no key.
        Forbidden: a reader's key, a catalogue entity and no admin's key, or an entity of
            another agency.
    """
    require_writer(who)
    if who.is_admin:
        return
    name = ENTITY_SETS[entity_set].name
    if entity_set in CATALOGUE:
        raise Forbidden(f"only an admin's key changes or deletes a {name}; "
                        "writers may create them")
    owner = await conn.fetchval(query("api_access", f"owner_{ENTITY_SETS[entity_set].table}"),
                                entity_id)
    if owner != who.agency_id:
        raise Forbidden(f"{name} {entity_id} belongs to another agency; API key "
                        f"{who.key_id} changes only those of {who.agency_code}")
