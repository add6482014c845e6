"""Who is calling: `CurrentUser` from the bearer token, `AdminUser` when it must be an admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from bazaar.db import DatabaseDep
from bazaar.errors import Forbidden, Unauthorized
from bazaar.security import TokenClaims, Tokens
from bazaar.users import service as users
from bazaar.users.schemas import UserOut

bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def _claims(
    request: Request, token: Annotated[str | None, Depends(bearer)]
) -> tuple[Tokens, TokenClaims]:
    # Checked before anything touches the database: a bad token costs no database work.
    if not token:
        raise Unauthorized()
    tokens: Tokens = request.app.state.tokens
    claims = tokens.read(token)
    if claims is None:
        raise Unauthorized("Invalid or expired token")
    return tokens, claims


async def _current_user(
    checked: Annotated[tuple[Tokens, TokenClaims], Depends(_claims)], db: DatabaseDep
) -> UserOut:
    tokens, claims = checked
    # Read the user on every request, so that a token stops working the moment
    # its user is deleted, deactivated or changes password.
    row = await db.read(users.read_signed_in, claims.user_id)
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
