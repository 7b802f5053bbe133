"""Named SQL queries, loaded from the .sql files in core/sql.

A file holds several queries, each introduced by a line ``-- name --``, then comment lines
that describe it, then the statement::

    -- count_things --
    -- How many Things the registry holds.
    SELECT count(*) FROM things;
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from core.errors import QueryNotFound

_HEADER = re.compile(r"^-- ([a-z_][a-z0-9_]*) --$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """Split the text of one .sql file into its named queries."""
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.startswith("--")]
        queries[name] = "\n".join(lines).strip()
    return queries


@cache
def load(file: str) -> dict[str, str]:
    """All queries of ``core/sql/{file}.sql``, by name."""
    text = resources.files("core").joinpath("sql", f"{file}.sql").read_text(encoding="utf-8")
    return parse(text)


def query(file: str, name: str) -> str:
    """One named query of ``core/sql/{file}.sql``."""
    try:
        return load(file)[name]
    except KeyError:
        raise QueryNotFound(f"no query {name!r} in core/sql/{file}.sql") from None
