"""Numbered schema migrations: core/sql/migrations/NNNN_name.sql, applied in order.

Each migration runs in its own transaction and is recorded in ``schema_migrations``; an
advisory lock keeps two processes from migrating at once, so running it again, or from two
places, is safe.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from core.errors import MigrationError
from core.queries import query

log = logging.getLogger(__name__)

_FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """Every migration shipped with the code, in version order."""
    folder = resources.files("core").joinpath("sql", "migrations")
    found = []
    for entry in folder.iterdir():
        match = _FILENAME.match(entry.name)
        if match is None:
            if entry.name.endswith(".sql"):
                raise MigrationError(f"not of the form NNNN_name.sql: {entry.name}")
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number: {versions}")
    return found


async def migrate(conn: Any, up_to: int | None = None) -> list[Migration]:
    """Apply the migrations the database does not have yet.

    Args:
        conn: an asyncpg connection to the database to migrate.
        up_to: the last version to apply (tests of an upgrade); None applies all.

    Returns:
        The migrations applied by this call, empty when the schema was up to date.
    """
    await conn.execute(query("migrations", "create_migrations_table"))
    applied: list[Migration] = []
    await conn.execute(query("migrations", "lock"))
    try:
        done = {row["version"]: row["name"]
                for row in await conn.fetch(query("migrations", "applied"))}
        for migration in available():
            if up_to is not None and migration.version > up_to:
                break
            if migration.version in done:
                if done[migration.version] != migration.name:
                    raise MigrationError(
                        f"migration {migration.version:04d} was applied as "
                        f"{done[migration.version]!r} but is now {migration.name!r}; "
                        "a migration that has been applied must not change"
                    )
                continue
            log.info("applying migration %04d_%s", migration.version, migration.name,
                     extra={"action": "migration_applied"})
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(query("migrations", "record"), migration.version,
                                   migration.name)
            applied.append(migration)
    finally:
        await conn.execute(query("migrations", "unlock"))
    return applied


async def applied_versions(conn: Any) -> list[int]:
    """The versions recorded as applied, in order."""
    rows = await conn.fetch(query("migrations", "applied"))
    return [row["version"] for row in rows]
