"""Checking credentials: a password at login, a token's user on every signed-in request."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.errors import Unauthorized
from bazaar.fields import PASSWORD_MAX_LENGTH
from bazaar.pagination import AnyRow
from bazaar.security import Passwords, TokenClaims, Tokens
from bazaar.users import service as users
from bazaar.users.models import User


@dataclass(frozen=True)
class Bearer:
    """The claims of a genuine, unexpired token, whose user is yet to be checked."""

    claims: TokenClaims
    tokens: Tokens


def signed_in_user(connection: Connection, bearer: Bearer) -> AnyRow:
    """The user `bearer` names, as a row; Unauthorized unless they still exist, are
    active and have the password the token was issued for.

    Read on every request, so that a token stops working the moment its user is
    deleted, deactivated or changes password.
    """
    row = users.read_signed_in(connection, bearer.claims.user_id)
    if (
        row is None
        or not row.is_active
        or bearer.tokens.password_stamp(row.hashed_password) != bearer.claims.password_stamp
    ):
        raise Unauthorized("Invalid or expired token")
    return row


async def authenticate(
    session: AsyncSession, *, email: str, password: str, passwords: Passwords
) -> User | None:
    """The active user with this email and password, else None.

    Upgrades the stored hash when it was made with outdated parameters.
    """
    user = await users.find_user_by_email(session, email)
    if len(password) > PASSWORD_MAX_LENGTH:
        return None
    matches, new_hash = await passwords.verify(password, user.hashed_password if user else None)
    if user is None or not matches or not user.is_active:
        return None
    if new_hash is not None:
        try:
            async with session.begin_nested():
                user.hashed_password = new_hash
        except OperationalError:
            # On SQLite another writer may hold the lock: keep the old hash, it
            # is still valid, and upgrade it at a later login.
            pass
    return user
