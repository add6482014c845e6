"""Who is calling: `CurrentUser` from the bearer token, `AdminUser` when it must be an admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.audit.context import act_as
from bazaar.auth.queries import Bearer, signed_in_user
from bazaar.errors import Forbidden, Unauthorized
from bazaar.services import services
from bazaar.users.schemas import UserOut

bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def _bearer(request: Request, token: str | None) -> Bearer:
    # The token is checked before anything touches the database: a bad one costs no
    # database work.
    if not token:
        raise Unauthorized()
    tokens = services(request).tokens
    claims = tokens.read(token)
    if claims is None:
        raise Unauthorized("Invalid or expired token")
    return Bearer(claims, tokens)


async def _checked_token(request: Request, token: Annotated[str | None, Depends(bearer)]) -> Bearer:
    return _bearer(request, token)


async def _current_user(request: Request, token: Annotated[str | None, Depends(bearer)]) -> UserOut:
    # The token is checked here rather than through `_checked_token` as a dependency:
    # FastAPI solves each dependency level anew on every request.
    row = await services(request).executor.read(signed_in_user, _bearer(request, token))
    # A plain value, as the API shows the user (no hash): most requests only need to know
    # who calls. A route that changes the caller's account loads them into its session.
    return UserOut.model_validate(row, from_attributes=True)


async def _admin_user(user: Annotated[UserOut, Depends(_current_user)]) -> UserOut:
    if not user.is_admin:
        raise Forbidden("Admins only")
    return user


async def session_caller(session: AsyncSession, bearer: Bearer) -> UserOut:
    """The user `bearer` names, read on the session's own connection: a write request
    checks its caller and does its work on one connection, through one gate place."""
    connection = await session.connection()
    row = await connection.run_sync(signed_in_user, bearer)
    # Every write of the API learns its caller here: the audit trail names them.
    act_as(row.id)
    return UserOut.model_validate(row, from_attributes=True)


# The signed-in user. Resolved before the request's session opens, as a read of its own.
CurrentUser = Annotated[UserOut, Depends(_current_user)]
AdminUser = Annotated[UserOut, Depends(_admin_user)]
# A genuine token whose user the route checks itself (with `signed_in_user` on the fast
# path, or `session_caller` in its session), in the same call to the database as its own
# work: one connection and one trip where `CurrentUser` then the work take two.
CheckedToken = Annotated[Bearer, Depends(_checked_token)]
