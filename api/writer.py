"""Creating, updating and deleting entities on one connection, inside the caller's
transaction.

The writer walks a checked draft (api/bodies.py): entities it links to must exist, related
entities inline are created first when the new one refers to them (a Datastream's Sensor)
and after it when they refer to it (a Thing's Datastreams). It keeps the standard's
automatic entities (a HistoricalLocation when a Thing's Locations change, a
FeatureOfInterest from the Thing's Location for an Observation without one, made once
however many requests want it at a time), a Thing's current Locations as its latest
HistoricalLocation names them, and the Datastreams' server-kept times and area, and
remembers what it touched so that `finish` can describe every change for the notifier.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from api import principal
from api.bodies import Draft, Ref
from api.changes import Touched, describe
from api.entities import ENTITY_SETS
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.serialize import value_json
from api.summaries import Seen, Summaries
from core.notify import Change
from core.queries import query

# Collections whose members point at their parent: linking an existing member moves it.
_MOVES = {
    ("Things", "Datastreams"): "move_datastreams_to_thing",
    ("Things", "HistoricalLocations"): "move_historical_locations_to_thing",
    ("Sensors", "Datastreams"): "move_datastreams_to_sensor",
    ("ObservedProperties", "Datastreams"): "move_datastreams_to_observed_property",
    ("Datastreams", "Observations"): "move_observations_to_datastream",
    ("FeaturesOfInterest", "Observations"): "move_observations_to_feature",
}
_BACK = {"Things": "Thing", "Sensors": "Sensor", "ObservedProperties": "ObservedProperty",
         "Datastreams": "Datastream", "FeaturesOfInterest": "FeatureOfInterest"}


def _sql(name: str) -> str:
    return query("api_write", name)


class Writer:
    """Writes of one request (or one batch group) on `conn`; `base` makes selfLinks."""

    def __init__(self, conn: Any, base: str) -> None:
        self.conn = conn
        self.base = base
        # By (entity set, id), in the order first touched.
        self.touched: dict[tuple[str, int], Touched] = {}
        self.summaries = Summaries()
        self._features: dict[int, int] = {}  # Datastream → FeatureOfInterest made for it
        self.deleted: list[tuple[str, int]] = []  # for the audit log

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A part that fails alone: its rows and what the writer noted go together."""
        touched, summaries, features = (len(self.touched), self.summaries.mark(),
                                        dict(self._features))
        try:
            async with self.conn.transaction():
                yield
        except BaseException:
            for key in list(self.touched)[touched:]:
                del self.touched[key]
            self.summaries.restore(summaries)
            self._features = features
            raise

    # Creation

    async def create(self, draft: Draft, parent: Ref | None = None) -> int:
        """Create `draft` and what it holds inline; `parent` fills its implied link."""
        if draft.implied is not None and parent is not None:
            draft.links[draft.implied] = [parent]
        new_id: int = await getattr(self, f"_create_{ENTITY_SETS[draft.entity_set].table}")(
            draft)
        return new_id

    async def _create_things(self, d: Draft) -> int:
        v = d.values
        # A new Thing belongs to the agency of the key that makes it.
        thing = await self._insert("Things", "insert_thing", principal.current.get().agency_code,
                                   v["name"],
                                   v["description"], v["properties"])
        locations = await self._ids(d, "Locations")
        if locations:
            await self._set_thing_locations(thing, locations)
        await self._history_children(d, thing)
        await self._children(d, thing, "Datastreams")
        return thing

    async def _create_locations(self, d: Draft) -> int:
        v = d.values
        location = await self._insert("Locations", "insert_location", v["name"],
                                      v["description"], v["encodingType"], v["location"],
                                      v["properties"])
        await self._locate_things(location, await self._ids(d, "Things"))
        await self._add_to_histories(location, await self._ids(d, "HistoricalLocations"))
        return location

    async def _create_historical_locations(self, d: Draft) -> int:
        thing = await self._one(d, "Thing")
        history = await self._insert("HistoricalLocations", "insert_historical_location",
                                     thing, d.values["time"])
        locations = await self._ids(d, "Locations")
        await self.conn.execute(_sql("add_historical_location_locations"), history, locations)
        await self._follow_history([history], {})
        return history

    async def _create_sensors(self, d: Draft) -> int:
        v = d.values
        sensor = await self._insert("Sensors", "insert_sensor", v["name"], v["description"],
                                    v["encodingType"], v["metadata"], v["properties"])
        await self._children(d, sensor, "Datastreams")
        return sensor

    async def _create_observed_properties(self, d: Draft) -> int:
        v = d.values
        prop = await self._insert("ObservedProperties", "insert_observed_property", v["name"],
                                  v["definition"], v["description"], v["properties"])
        await self._children(d, prop, "Datastreams")
        return prop

    async def _create_datastreams(self, d: Draft) -> int:
        v, unit = d.values, d.values["unitOfMeasurement"]
        thing = await self._one(d, "Thing")
        sensor = await self._one(d, "Sensor")
        prop = await self._one(d, "ObservedProperty")
        datastream = await self._insert(
            "Datastreams", "insert_datastream", thing, sensor, prop, v["name"],
            v["description"], v["observationType"], unit["name"], unit["symbol"],
            unit["definition"], v["properties"])
        await self._children(d, datastream, "Observations")
        return datastream

    async def _create_observations(self, d: Draft, keep_id: int | None = None) -> int:
        datastream = await self._one(d, "Datastream")
        if d.links.get("FeatureOfInterest"):
            feature = await self._one(d, "FeatureOfInterest")
        else:
            feature = await self._automatic_feature(datastream, d.where)
        v = d.values
        start, end = v["phenomenonTime"] or (datetime.now(UTC), None)
        valid = v["validTime"] or (None, None)
        observation = await self.conn.fetchval(
            _sql("insert_observation"), keep_id, start, end, datastream, v["resultTime"],
            valid[0], valid[1], *result_columns(v["result"]), v["resultQuality"],
            v["parameters"], feature)
        if observation is None:
            shown = value_json(start) + (f"/{value_json(end)}" if end is not None else "")
            raise Conflict(f"{d.where}: Datastream {datastream} has an Observation at "
                           f"phenomenonTime {shown} already")
        self._touch("Observations", int(observation), None if keep_id is None else ())
        self.summaries.added.append(Seen(datastream, start, end, v["resultTime"], feature))
        return int(observation)

    async def _create_features_of_interest(self, d: Draft) -> int:
        v = d.values
        feature = await self._insert("FeaturesOfInterest", "insert_feature", v["name"],
                                     v["description"], v["encodingType"], v["feature"],
                                     v["properties"])
        await self._children(d, feature, "Observations")
        return feature

    async def _automatic_feature(self, datastream: int, where: str) -> int:
        """The FeatureOfInterest made from the Location of the Datastream's Thing."""
        if datastream in self._features:
            return self._features[datastream]
        location = await self.conn.fetchval(_sql("thing_location_of_datastream"), datastream)
        if location is None:
            raise BadRequest(
                f"{where}: no FeatureOfInterest is given and the Thing of Datastream "
                f"{datastream} has no Location to make one from; give a FeatureOfInterest "
                "or a Location of the Thing")
        feature = await self.conn.fetchval(_sql("feature_of_location"), location)
        if feature is None:
            await self.conn.execute(_sql("lock_location_feature"), location)
            # Made meanwhile by the transaction that held the lock before this one?
            feature = await self.conn.fetchval(_sql("feature_of_location"), location)
        if feature is None:
            feature = await self._insert_location_feature(location, where)
        self._features[datastream] = int(feature)
        return int(feature)

    async def _insert_location_feature(self, location: int, where: str) -> int:
        """The FeatureOfInterest made now from `location`, or the one a writer that takes
        no lock (registry provisioning) gave it meanwhile."""
        feature = await self.conn.fetchval(_sql("insert_location_feature"), location)
        if feature is not None:
            self._touch("FeaturesOfInterest", feature, None)
            return int(feature)
        feature = await self.conn.fetchval(_sql("feature_of_location"), location)
        if feature is None:
            raise Conflict(f"{where}: Location {location}, the place of the Thing to make "
                           "the FeatureOfInterest from, was deleted meanwhile; send the "
                           "request again")
        return int(feature)

    # Update

    async def update(self, entity_set: str, entity_id: int, d: Draft,
                     changed: tuple[str, ...]) -> None:
        """Replace the properties of an entity with those of `d`, a complete draft, and
        apply the links it gives; `changed` names what differs, for the notification."""
        table = ENTITY_SETS[entity_set].table
        await getattr(self, f"_update_{table}")(entity_id, d, changed)
        self._touch(entity_set, entity_id, changed)

    async def _update_things(self, thing: int, d: Draft, changed: tuple[str, ...]) -> None:
        v = d.values
        await self.conn.execute(_sql("update_thing"), thing, v["name"], v["description"],
                                v["properties"])
        if "Locations" in d.links:
            await self._set_thing_locations(thing, await self._ids(d, "Locations"))
        await self._history_children(d, thing)
        await self._children(d, thing, "Datastreams")

    async def _update_locations(self, location: int, d: Draft,
                                changed: tuple[str, ...]) -> None:
        v = d.values
        await self.conn.execute(_sql("update_location"), location, v["name"], v["description"],
                                v["encodingType"], v["location"], v["properties"])
        await self._locate_things(location, await self._ids(d, "Things"))
        await self._add_to_histories(location, await self._ids(d, "HistoricalLocations"))

    async def _update_historical_locations(self, history: int, d: Draft,
                                           changed: tuple[str, ...]) -> None:
        thing = await self._one(d, "Thing") if d.links.get("Thing") else None
        before = await self._latest_histories([history])
        await self.conn.execute(_sql("update_historical_location"), history, thing,
                                d.values["time"])
        if "Locations" in d.links:
            locations = await self._ids(d, "Locations")
            if not locations:
                raise BadRequest(f"{d.where}.Locations: a HistoricalLocation has at least "
                                 "one Location")
            await self.conn.execute(_sql("set_historical_location_locations"), history,
                                    locations)
        await self._follow_history([history], before)

    async def _update_sensors(self, sensor: int, d: Draft, changed: tuple[str, ...]) -> None:
        v = d.values
        await self.conn.execute(_sql("update_sensor"), sensor, v["name"], v["description"],
                                v["encodingType"], v["metadata"], v["properties"])
        await self._children(d, sensor, "Datastreams")

    async def _update_observed_properties(self, prop: int, d: Draft,
                                          changed: tuple[str, ...]) -> None:
        v = d.values
        await self.conn.execute(_sql("update_observed_property"), prop, v["name"],
                                v["definition"], v["description"], v["properties"])
        await self._children(d, prop, "Datastreams")

    async def _update_datastreams(self, datastream: int, d: Draft,
                                  changed: tuple[str, ...]) -> None:
        v, unit = d.values, d.values["unitOfMeasurement"]
        links = await self.conn.fetchrow(_sql("datastream_links"), datastream)
        thing = await self._one_or(d, "Thing", links["thing_id"])
        sensor = await self._one_or(d, "Sensor", links["sensor_id"])
        prop = await self._one_or(d, "ObservedProperty", links["observed_property_id"])
        await self.conn.execute(
            _sql("update_datastream"), datastream, thing, sensor, prop, v["name"],
            v["description"], v["observationType"], unit["name"], unit["symbol"],
            unit["definition"], v["properties"])
        await self._children(d, datastream, "Observations")

    async def _update_observations(self, observation: int, d: Draft,
                                   changed: tuple[str, ...]) -> None:
        # Delete and insert under the same id: a new phenomenon time may move the row to
        # another chunk of the hypertable.
        old = await self.conn.fetchrow(_sql("delete_observation"), observation)
        if old is None:
            raise NotFound(f"there is no Observation with @iot.id {observation}")
        self.summaries.removed.append(_seen(old))
        d.links.setdefault("Datastream", [Ref("Datastreams", old["datastream_id"])])
        if old["feature_id"] is not None:
            d.links.setdefault("FeatureOfInterest",
                               [Ref("FeaturesOfInterest", old["feature_id"])])
        await self._create_observations(d, keep_id=observation)

    async def _update_features_of_interest(self, feature: int, d: Draft,
                                           changed: tuple[str, ...]) -> None:
        if "feature" in changed:
            self.summaries.refresh |= await self._observing(feature)
        v = d.values
        await self.conn.execute(_sql("update_feature"), feature, v["name"], v["description"],
                                v["encodingType"], v["feature"], v["properties"])
        await self._children(d, feature, "Observations")

    # Deletion

    async def delete(self, entity_set: str, entity_id: int) -> bool:
        """Delete an entity and what the standard deletes with it; whether it existed."""
        table = ENTITY_SETS[entity_set].table
        if table == "observations":
            old = await self.conn.fetchrow(_sql("delete_observation"), entity_id)
            if old is not None:
                self.summaries.removed.append(_seen(old))
                self.deleted.append((entity_set, entity_id))
            return old is not None
        if table == "features_of_interest":
            self.summaries.refresh |= await self._observing(entity_id)
        if table == "locations":
            await self.conn.execute(_sql("delete_location_history"), entity_id)
        gone = await self.conn.fetchval(_sql(f"delete_{table}"), entity_id) is not None
        if gone:
            self.deleted.append((entity_set, entity_id))
        return gone

    async def _observing(self, feature: int) -> set[int]:
        return {r["id"] for r in await self.conn.fetch(_sql("feature_datastreams"), feature)}

    # Links

    async def _one(self, d: Draft, name: str) -> int:
        """The id of the entity `d` links to by `name`, created first when inline."""
        return (await self._ids(d, name))[0]

    async def _one_or(self, d: Draft, name: str, current: int) -> int:
        """The entity `d` links to by `name`, or `current` when it gives none."""
        return await self._one(d, name) if d.links.get(name) else current

    async def _ids(self, d: Draft, name: str) -> list[int]:
        """The ids of the entities `d` links to by `name`: existing ones checked, inline
        ones created."""
        ids = []
        for item in d.links.get(name, []):
            if isinstance(item, Ref):
                await self._check_exists(item)
                ids.append(item.id)
            else:
                ids.append(await self.create(item))
        return list(dict.fromkeys(ids))

    async def _check_exists(self, ref: Ref) -> None:
        if not await self._exists(ref.entity_set, ref.id):
            raise BadRequest(f"{ref.where}: there is no {ENTITY_SETS[ref.entity_set].name} "
                             f"with @iot.id {ref.id}")

    async def _exists(self, entity_set: str, entity_id: int) -> bool:
        """Whether the entity exists, as the request's principal sees it."""
        return bool(await self.conn.fetchval(_sql("entity_exists"), entity_set, entity_id))

    async def _children(self, d: Draft, parent: int, name: str) -> None:
        """Members of a collection that point at `parent`: inline ones created under it,
        existing ones moved to it."""
        refs = []
        for item in d.links.get(name, []):
            if isinstance(item, Ref):
                refs.append(item.id)
            else:
                await self.create(item, Ref(d.entity_set, parent))
        if not refs:
            return
        moved = await self.conn.fetch(_sql(_MOVES[(d.entity_set, name)]), parent, refs)
        missing = set(refs) - {r["id"] for r in moved}
        if missing:
            await self._refuse_foreign(name, min(missing), d.where)
            raise BadRequest(f"{d.where}.{name}: there is no "
                             f"{ENTITY_SETS[name].name} with @iot.id {min(missing)}")
        for row in moved:
            self._touch(name, row["id"], (_BACK[d.entity_set],))
            if "datastream_id" in row:
                self.summaries.refresh.add(row["datastream_id"])
        if (d.entity_set, name) == ("Datastreams", "Observations"):
            self.summaries.refresh.add(parent)

    async def _refuse_foreign(self, entity_set: str, entity_id: int, where: str) -> None:
        """Forbidden when the entity a link could not move exists: row-level security kept
        it, as it belongs to another agency."""
        if await self._exists(entity_set, entity_id):
            raise Forbidden(f"{where}.{entity_set}: {ENTITY_SETS[entity_set].name} "
                            f"{entity_id} belongs to another agency; the API key may not "
                            "move it")

    async def _set_thing_locations(self, thing: int, locations: list[int]) -> None:
        """Make `locations` the Thing's current ones, recorded as a HistoricalLocation,
        unless they are already."""
        current = [r["location_id"] for r in await self.conn.fetch(
            _sql("thing_location_ids"), thing)]
        if sorted(locations) == current:
            return
        self._touch("Things", thing, ("Locations",))
        if not locations:
            await self.conn.execute(_sql("clear_thing_locations"), thing)
            return
        history = await self.conn.fetchval(_sql("set_thing_locations"), thing, locations)
        await self.conn.execute(_sql("add_historical_location_locations"), history, locations)
        self._touch("HistoricalLocations", history, None)

    async def _locate_things(self, location: int, things: list[int]) -> None:
        for thing in things:
            await self._set_thing_locations(thing, [location])

    # HistoricalLocations given by hand: the latest of a Thing's says where it is now.

    async def _add_to_histories(self, location: int, histories: list[int]) -> None:
        before = await self._latest_histories(histories)
        for history in histories:
            await self.conn.execute(_sql("add_historical_location_locations"), history,
                                    [location])
        await self._follow_history(histories, before)

    async def _history_children(self, d: Draft, thing: int) -> None:
        """A Thing's HistoricalLocations: inline ones created, linked ones moved to it."""
        moved = [item.id for item in d.links.get("HistoricalLocations", [])
                 if isinstance(item, Ref)]
        before = await self._latest_histories(moved)
        await self._children(d, thing, "HistoricalLocations")
        await self._follow_history(moved, before)

    async def _latest_histories(self, histories: list[int]) -> dict[int, int]:
        """The Things of `histories` (HistoricalLocations), each with its latest one."""
        if not histories:
            return {}
        things = [r["thing_id"] for r in await self.conn.fetch(
            _sql("historical_location_things"), histories)]
        return {r["thing_id"]: r["id"] for r in await self.conn.fetch(
            _sql("latest_historical_locations"), things)}

    async def _follow_history(self, histories: list[int], before: dict[int, int]) -> None:
        """After a change of `histories`, with `before` from `_latest_histories` ahead of
        it: a Thing whose latest HistoricalLocation is or was one of them gets the
        Locations of its latest one as its current ones, recording nothing more."""
        if not histories:
            return
        things = {*before, *(r["thing_id"] for r in await self.conn.fetch(
            _sql("historical_location_things"), histories))}
        for latest in await self.conn.fetch(_sql("latest_historical_locations"), list(things)):
            thing, locations = latest["thing_id"], list(latest["locations"])
            if latest["id"] not in histories and before.get(thing) not in histories:
                continue
            current = [r["location_id"] for r in await self.conn.fetch(
                _sql("thing_location_ids"), thing)]
            if locations and locations != current:
                await self.conn.execute(_sql("replace_thing_locations"), thing, locations)
                self._touch("Things", thing, ("Locations",))

    # Bookkeeping

    async def _insert(self, entity_set: str, name: str, *args: Any,
                      changed: tuple[str, ...] | None = None) -> int:
        new_id = await self.conn.fetchval(_sql(name), *args)
        if new_id is None:  # what it belongs to is gone (a Thing's agency, a Datastream's Thing)
            owner = (f"the agency {principal.current.get().agency_code!r}"
                     if entity_set == "Things"
                     else "the entity it belongs to")
            raise Conflict(f"the new {ENTITY_SETS[entity_set].name} cannot be stored: {owner} "
                           "does not exist")
        self._touch(entity_set, new_id, changed)
        return int(new_id)

    def _touch(self, entity_set: str, entity_id: int, changed: tuple[str, ...] | None) -> None:
        t = self.touched.get((entity_set, entity_id))
        if t is None:
            self.touched[(entity_set, entity_id)] = Touched(entity_set, entity_id, changed)
        elif t.changed is not None and changed is not None:
            t.changed = tuple(dict.fromkeys(t.changed + changed))

    async def finish(self) -> list[Change]:
        """Bring Datastream summaries up to date and describe every entity touched, as a
        GET renders it now; call it last, inside the transaction."""
        await self.summaries.apply(self.conn)
        return await describe(self.conn, self.base, list(self.touched.values()))


def result_columns(result: Any) -> tuple[Any, ...]:
    """The result in the one typed column its JSON type chooses: (number, integer, string,
    boolean, JSON text); integers past 64 bits keep every digit as JSON."""
    if isinstance(result, bool):
        return None, None, None, result, None
    if isinstance(result, int):
        if -(2**63) <= result < 2**63:
            return None, result, None, None, None
        return None, None, None, None, json.dumps(result)
    if isinstance(result, float):
        return result, None, None, None, None
    if isinstance(result, str):
        return None, None, result, None, None
    return None, None, None, None, json.dumps(result)


def _seen(row: Any) -> Seen:
    return Seen(row["datastream_id"], row["phenomenon_time"], row["phenomenon_time_end"],
                row["result_time"], row["feature_id"])
