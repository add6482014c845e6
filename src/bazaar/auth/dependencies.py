"""Who is calling: `CurrentUser` from the bearer token, `AdminUser` when it must be an admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from bazaar.db import SessionDep
from bazaar.errors import Forbidden, Unauthorized
from bazaar.security import TokenClaims, Tokens
from bazaar.users import service as users
from bazaar.users.models import User

bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def _claims(
    request: Request, token: Annotated[str | None, Depends(bearer)]
) -> tuple[Tokens, TokenClaims]:
    # Checked before the session is opened: a bad token costs no database work.
    if not token:
        raise Unauthorized()
    tokens: Tokens = request.app.state.tokens
    claims = tokens.read(token)
    if claims is None:
        raise Unauthorized("Invalid or expired token")
    return tokens, claims


async def _current_user(
    checked: Annotated[tuple[Tokens, TokenClaims], Depends(_claims)], session: SessionDep
) -> User:
    tokens, claims = checked
    # Load the user on every request, so that a token stops working the moment
    # its user is deleted, deactivated or changes password.
    user = await users.find_user(session, claims.user_id)
    if (
        user is None
        or not user.is_active
        or tokens.password_stamp(user.hashed_password) != claims.password_stamp
    ):
        raise Unauthorized("Invalid or expired token")
    return user


async def _admin_user(user: Annotated[User, Depends(_current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("Admins only")
    return user


CurrentUser = Annotated[User, Depends(_current_user)]
AdminUser = Annotated[User, Depends(_admin_user)]
