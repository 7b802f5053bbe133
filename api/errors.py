"""Errors of the readings API; one handler turns each into a JSON body with a stable code.

ApiError
 ├── BadRequest     a malformed path, query option or body (400)
 ├── Unauthorized   no API key where one is needed, or one that is not valid (401)
 ├── Forbidden      the key's role or agency may not do this (403)
 ├── NotFound       no such entity or path (404)
 ├── NotAllowed     the method does not apply to the path (405)
 ├── Conflict       the change contradicts what is stored (409)
 ├── PayloadTooLarge  a request body past the limit (413)
 ├── UnsupportedMediaType  a body in a format the request cannot take (415)
 ├── FailedDependency  a request of a batch depends on one that failed (424)
 ├── TooManyRequests  the key (or address) ran past its rate limit (429)
 ├── NotImplementedOption  a system query option of OData not offered here (501)
 ├── TooSlow        the query ran past the statement timeout (503)
 └── Unavailable    the database cannot be reached (503)
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


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


class Unauthorized(ApiError):
    """This needs a valid API key, sent as `Authorization: Bearer <key>`."""

    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    """The API key may not do this."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """There is no such entity."""

    status = 404
    code = "not_found"


class NotAllowed(ApiError):
    """The method does not apply to this path."""

    status = 405
    code = "method_not_allowed"


class Conflict(ApiError):
    """The change contradicts what is stored."""

    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    """The request body is too large."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    """The body is in a format this request does not take."""

    status = 415
    code = "unsupported_media_type"


class TooManyRequests(ApiError):
    """Too many requests; wait as long as Retry-After says."""

    status = 429
    code = "too_many_requests"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotImplementedOption(ApiError):
    """The query option is not offered by this server."""

    status = 501
    code = "not_implemented"


class FailedDependency(ApiError):
    """A request this one depends on failed, so this one was not carried out."""

    status = 424
    code = "failed_dependency"


class TooSlow(ApiError):
    """The query took too long; narrow it (a shorter time range, a filter on a Datastream)."""

    status = 503
    code = "too_slow"


class Unavailable(ApiError):
    """The database cannot be reached just now; try again after Retry-After seconds."""

    status = 503
    code = "unavailable"
    retry_after = 5


# The schemes a key may be sent in (api/auth.py), offered with every 401.
CHALLENGE = 'Bearer realm="stadspuls", Basic realm="stadspuls"'


def error_response(exc: ApiError) -> JSONResponse:
    """An error as the API answers it: its JSON body, and the headers its status calls for
    (how to authenticate with a 401, how long to wait with a 429)."""
    body: dict[str, Any] = {"code": exc.code, "message": str(exc)}
    if exc.position is not None:
        body["position"] = exc.position
    headers = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = CHALLENGE
    if isinstance(exc, TooManyRequests | Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(body, status_code=exc.status, headers=headers)
