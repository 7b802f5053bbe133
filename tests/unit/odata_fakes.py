"""A resolver with a fixed set of columns, for the pure tests of the OData library."""

from api.odata import Column, FilterError

COLUMNS = {
    ("id",): Column("o.id", "integer"),
    ("name",): Column("t.name", "string"),
    ("description",): Column("t.description", "string"),
    ("result",): Column("o.result_number", "number"),
    ("active",): Column("t.active", "boolean"),
    ("phenomenonTime",): Column("o.phenomenon_time", "datetime"),
    ("location",): Column("l.location", "geometry"),
    ("properties",): Column("t.properties", "json"),
    ("Datastream", "Thing", "name"): Column("th.name", "string"),
    ("Datastream", "properties"): Column("ds.properties", "json"),
    ("total",): Column("o.a + o.b", "number"),
}


class FakeResolver:
    """Knows a fixed set of columns and records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, ...]] = []

    def resolve(self, path: tuple[str, ...], position: int) -> Column:
        self.asked.append(path)
        if path not in COLUMNS:
            raise FilterError(f"unknown property '{'/'.join(path)}'", position)
        return COLUMNS[path]
