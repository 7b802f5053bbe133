"""Errors shared by every Stadspuls process.

CoreError
 ├── DatabaseUnavailable  the database does not answer
 ├── MigrationError   a migration file is malformed or failed to apply
 └── QueryNotFound    a named query is not in the SQL files
"""


class CoreError(Exception):
    """Stadspuls failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class DatabaseUnavailable(CoreError):
    """The database does not answer."""


class MigrationError(CoreError):
    """The database schema could not be migrated."""


class QueryNotFound(CoreError):
    """No query of that name is in the SQL files."""
