"""A resolver with a fixed set of columns, for the pure tests of the OData library."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.odata import Column, FilterError

COLUMNS = {
    ("id",): Column("o.id", "integer", nullable=False),
    ("name",): Column("t.name", "string"),
    ("description",): Column("t.description", "string"),
    ("result",): Column("o.result_number", "number"),
    ("active",): Column("t.active", "boolean"),
    ("phenomenonTime",): Column("o.phenomenon_time", "datetime", nullable=False),
    ("location",): Column("l.location", "geometry"),
    ("properties",): Column("t.properties", "json"),
    ("Datastream", "Thing", "id"): Column("th.id", "integer"),
    ("Datastream", "Thing", "name"): Column("th.name", "string"),
    ("Datastream", "properties"): Column("ds.properties", "json"),
    ("total",): Column("o.a + o.b", "number"),
}


@dataclass(frozen=True)
class Members:
    """A fake collection: its table, the alias of a member, the column that ties a member
    to its owner, the member's columns and collections."""

    table: str
    alias: str
    owner_key: str
    columns: dict[tuple[str, ...], Column]
    collections: dict[tuple[str, ...], Members] = field(default_factory=dict)


OBSERVATIONS = Members("observations", "ob", "datastream_id", {
    ("result",): Column("ob.result", "number"),
})
DATASTREAMS = Members("datastreams", "d", "thing_id", {
    ("id",): Column("d.id", "integer", nullable=False),
    ("name",): Column("d.name", "string"),
    ("unit",): Column("d.unit", "string"),
}, {("Observations",): OBSERVATIONS})
COLLECTIONS: dict[tuple[str, ...], Members] = {("Datastreams",): DATASTREAMS}


class FakeResolver:
    """Knows a fixed set of columns and collections and records what it was asked."""

    def __init__(self, columns: dict[tuple[str, ...], Column] | None = None,
                 collections: dict[tuple[str, ...], Members] | None = None,
                 alias: str = "t") -> None:
        self.columns = COLUMNS if columns is None else columns
        self.collections = COLLECTIONS if collections is None else collections
        self.alias = alias
        self.asked: list[tuple[str, ...]] = []

    def resolve(self, path: tuple[str, ...], position: int) -> Column:
        self.asked.append(path)
        if path not in self.columns:
            raise FilterError(f"unknown property '{'/'.join(path)}'", position)
        return self.columns[path]

    def collection_prefix(self, path: tuple[str, ...]) -> int:
        for depth in range(1, len(path) + 1):
            if path[:depth] in self.collections:
                return depth
        return 0

    def collection(self, path: tuple[str, ...], position: int) -> FakeCollection:
        if path not in self.collections:
            raise FilterError(f"no collection '{'/'.join(path)}'", position)
        return FakeCollection(self.collections[path], self.alias)


class FakeCollection:
    """The members of a fake collection, tested in an EXISTS subquery."""

    def __init__(self, members: Members, owner_alias: str) -> None:
        self.members = members
        self.owner_alias = owner_alias
        self.resolver = FakeResolver(members.columns, members.collections, members.alias)

    def exists(self, condition: str | None) -> str:
        m = self.members
        tie = f"{m.alias}.{m.owner_key} = {self.owner_alias}.id"
        where = tie if condition is None else f"{tie} AND {condition}"
        return f"EXISTS (SELECT 1 FROM {m.table} {m.alias} WHERE {where})"
