"""Domain errors, and the handlers that turn them (and a few others) into HTTP answers."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from fastapi import FastAPI, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from bazaar.fields import NO_SUCH_ID

logger = logging.getLogger(__name__)

# The `responses=` of a route: the outcomes besides success, for the API docs.
Responses = dict[int | str, dict[str, Any]]

# What a route behind `CurrentUser` may answer when the token does not hold.
UNAUTHENTICATED: Responses = {401: {"description": "Missing, invalid or expired token"}}

# What a route that reads a body may answer before it looks at the fields.
BODY_ERRORS: Responses = {
    400: {"description": "The body cannot be parsed (not UTF-8, nested too deeply...)"},
    413: {"description": "The body is over the size limit (1 MiB unless configured)"},
}


class BazaarError(Exception):
    """An outcome the API reports as a status code and `{"detail": ...}`."""

    status_code: ClassVar[int] = status.HTTP_400_BAD_REQUEST
    default_detail: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        self.detail = detail or self.default_detail
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class BadRequest(BazaarError):
    status_code = status.HTTP_400_BAD_REQUEST


class Conflict(BazaarError):
    """A uniqueness rule would be broken (the API's contract reports it as a 400)."""

    status_code = status.HTTP_400_BAD_REQUEST


class Unauthorized(BazaarError):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "Not authenticated"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(BazaarError):
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = "Not allowed"


class NotFound(BazaarError):
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "Not found"


class PreconditionFailed(BazaarError):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The resource has changed since the version named in If-Match"


class TooManyRequests(BazaarError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Too many attempts, try again later"

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})


class InvalidInput(BazaarError):
    """A request value that passed its type check but is still not acceptable: a 422."""

    status_code = status.HTTP_422_UNPROCESSABLE_CONTENT

    def __init__(self, *, loc: tuple[str, ...], msg: str, value: object) -> None:
        super().__init__(msg)
        self.errors = [{"type": "value_error", "loc": list(loc), "msg": msg, "input": value}]


class Unavailable(BazaarError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable, try again shortly"


def _bazaar_error(_request: Request, exc: Exception) -> JSONResponse:
    exc = cast(BazaarError, exc)
    # An invalid value reads like any other validation error: the standard 422 body.
    detail = _json_safe(exc.errors) if isinstance(exc, InvalidInput) else exc.detail
    return JSONResponse({"detail": detail}, exc.status_code, headers=exc.headers)


def _json_safe(value: Any) -> Any:
    """The value with whatever JSON cannot carry (NaN, lone surrogates) made printable."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_json_safe(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# What a field's name says of a secret. Matched in any case and within longer names, so
# that a client's near miss (`Password`, `new_password`, `access_token`) is kept as safe
# as the API's own `password`, `current_password`, `token` and `refresh_token`.
_SECRET_WORDS = ("password", "token", "secret")
# Masked rather than left out, so that a body still shows that the field was sent (a
# missing `name` next to a `password`); one mask for all, so that no length shows either.
SECRET_MASK = "********"  # noqa: S105 - what stands for a secret, not one


def _is_secret(name: object) -> bool:
    return isinstance(name, str) and any(word in name.lower() for word in _SECRET_WORDS)


def _masked(value: Any) -> Any:
    """`value` with whatever a secret field holds, at any depth, replaced by the mask."""
    if isinstance(value, Mapping):
        return {k: SECRET_MASK if _is_secret(k) else _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def _without_secrets(error: dict[str, Any]) -> dict[str, Any]:
    """The error as the client may see it again: no password or token it sent."""
    if any(_is_secret(part) for part in error["loc"]):
        return {key: value for key, value in error.items() if key != "input"}
    if "input" in error:
        return {**error, "input": _masked(error["input"])}
    return error


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    exc = cast(RequestValidationError, exc)
    raw = exc.errors()
    for error in raw:
        if error["type"] == NO_SUCH_ID:
            # An id out of its column's range: no such row, as for an id that names none,
            # whose 404 comes before the body is looked at too.
            return JSONResponse({"detail": error["msg"]}, status.HTTP_404_NOT_FOUND)
    # The standard body echoes the input, which may hold NaN or lone surrogates:
    # make those printable rather than fail while reporting the client's mistake.
    errors = [_without_secrets(error) for error in raw]
    errors = _json_safe(jsonable_encoder(errors, custom_encoder={float: _json_safe}))
    return JSONResponse({"detail": errors}, status.HTTP_422_UNPROCESSABLE_CONTENT)


def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DBAPIError) and not exc.connection_invalidated and not _is_disconnect(exc):
        raise exc
    logger.warning("database unavailable: %s", exc.__class__.__name__)
    return _bazaar_error(_request, Unavailable(headers={"Retry-After": "1"}))


# SQLSTATEs of a server that is away for now: connection exceptions (class 08), shutting
# down or crashed (57P01, 57P02), not accepting connections yet (57P03), out of slots (53300).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
_DISCONNECT_NAMES = frozenset(
    {
        "InterfaceError",
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "ConnectionFailureError",
        "TooManyConnectionsError",
    }
)


def _is_disconnect(exc: DBAPIError) -> bool:
    # The driver's own error is often one or two links down the chain: SQLAlchemy wraps
    # a translated DBAPI error, which wraps asyncpg's (for instance when connecting fails).
    cause: BaseException | None = exc.orig
    for _ in range(5):
        if cause is None:
            return False
        sqlstate = getattr(cause, "sqlstate", None)
        if (
            isinstance(cause, OSError | ConnectionError)
            or type(cause).__name__ in _DISCONNECT_NAMES
            or (isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES))
        ):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    exc = cast(HTTPException, exc)
    # Starlette's `Allow` names the methods of the first route whose path matches; the
    # resource has those of every documented route with that route's path template.
    template, allowed = None, set[str]()
    for route in iter_route_contexts(request.app.routes):
        if (
            getattr(route, "include_in_schema", False)
            and route.matches(request.scope)[0] is not Match.NONE
        ):
            template = template or route.path_format
            if route.path_format == template:
                allowed |= route.methods or set()
    if allowed:
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(allowed))}
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(status.HTTP_405_METHOD_NOT_ALLOWED, _method_not_allowed)
    app.add_exception_handler(BazaarError, _bazaar_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeoutError, _database_error)
    app.add_exception_handler(OSError, _database_error)
