"""Errors of the readings API; one handler turns each into a JSON body with a stable code.

ApiError
 ├── BadRequest     a malformed path, query option or body (400)
 ├── NotFound       no such entity or path (404)
 └── TooSlow        the query ran past the statement timeout (503)
"""

from __future__ import annotations


class ApiError(Exception):
    """The request could not be answered."""

    status = 500
    code = "error"

    def __init__(self, message: str | None = None, position: int | None = None) -> None:
        super().__init__(message or self.__doc__)
        self.position = position


class BadRequest(ApiError):
    """The request is malformed."""

    status = 400
    code = "bad_request"


class NotFound(ApiError):
    """There is no such entity."""

    status = 404
    code = "not_found"


class TooSlow(ApiError):
    """The query took too long; narrow it (a shorter time range, a filter on a Datastream)."""

    status = 503
    code = "too_slow"
