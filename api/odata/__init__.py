"""OData query options of the SensorThings API: $filter, $orderby, $expand and $select.

A pure library: text goes in, a syntax tree or SQL text with parameters comes out. It knows
no tables; a ``Resolver`` supplied by the caller says what each property path means in SQL.

    node = parse_filter("Datastream/Thing/name eq 'Lund' and result gt 20")
    sql, params = compile_filter(node, resolver, start=2)

``parse_orderby``/``compile_orderby`` do the same for sort keys, and ``parse_expand`` and
``parse_select`` split the list options. Every error is an ``ODataError`` with a 0-based
``position`` into the option's text.
"""

from api.odata.compiler import CompiledSql, compile_filter, property_name
from api.odata.errors import FilterError, ODataError, QueryOptionError, UnsupportedOption
from api.odata.options import (
    MAX_EXPAND_DEPTH,
    UNSUPPORTED,
    Expansion,
    parse_expand,
    parse_select,
    split_top_level,
)
from api.odata.orderby import OrderItem, compile_orderby, direction, parse_orderby
from api.odata.parser import parse_filter
from api.odata.resolver import Collection, Column, ColumnType, Resolver

__all__ = [
    "MAX_EXPAND_DEPTH",
    "UNSUPPORTED",
    "Collection",
    "Column",
    "ColumnType",
    "CompiledSql",
    "Expansion",
    "FilterError",
    "ODataError",
    "OrderItem",
    "QueryOptionError",
    "Resolver",
    "UnsupportedOption",
    "compile_filter",
    "compile_orderby",
    "direction",
    "parse_expand",
    "parse_filter",
    "parse_orderby",
    "parse_select",
    "property_name",
    "split_top_level",
]
