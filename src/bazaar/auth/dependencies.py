"""Who is calling: `CurrentUser` from the bearer token, `AdminUser` when it must be an admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from bazaar.db import database
from bazaar.errors import Forbidden, Unauthorized
from bazaar.security import Tokens
from bazaar.users import service as users
from bazaar.users.schemas import UserOut

bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def _current_user(request: Request, token: Annotated[str | None, Depends(bearer)]) -> UserOut:
    # The token is checked before anything touches the database: a bad one costs no
    # database work.
    if not token:
        raise Unauthorized()
    tokens: Tokens = request.app.state.tokens
    claims = tokens.read(token)
    if claims is None:
        raise Unauthorized("Invalid or expired token")
    # Read the user on every request, so that a token stops working the moment
    # its user is deleted, deactivated or changes password.
    row = await database(request).read(users.read_signed_in, claims.user_id)
    if (
        row is None
        or not row.is_active
        or tokens.password_stamp(row.hashed_password) != claims.password_stamp
    ):
        raise Unauthorized("Invalid or expired token")
    # A plain value, as the API shows the user (no hash): most requests only need to know
    # who calls. A route that changes the caller's account loads them into its session.
    return UserOut.model_validate(row, from_attributes=True)


async def _admin_user(user: Annotated[UserOut, Depends(_current_user)]) -> UserOut:
    if not user.is_admin:
        raise Forbidden("Admins only")
    return user


# The signed-in user. Resolved before the request's session opens, as a read of its own.
CurrentUser = Annotated[UserOut, Depends(_current_user)]
AdminUser = Annotated[UserOut, Depends(_admin_user)]
