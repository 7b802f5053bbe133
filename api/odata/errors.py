"""Errors raised while reading OData query options.

ODataError               a query option cannot be understood; carries a 0-based position
 ├── FilterError         a $filter or $orderby expression is malformed or ill-typed
 └── QueryOptionError    an $expand or $select list is malformed
      └── UnsupportedOption   a system query option of OData that is not offered
"""


class ODataError(Exception):
    """The query option is not valid."""

    def __init__(self, message: str | None = None, position: int = 0) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.position = position
        super().__init__(f"{self.message} (at position {position})")


class FilterError(ODataError):
    """The filter expression is not valid."""


class QueryOptionError(ODataError):
    """The query option list is not valid."""


class UnsupportedOption(QueryOptionError):
    """The query option is OData's but not offered here."""
