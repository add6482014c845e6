"""Checking credentials: a password at login, a token's user on every signed-in request."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from bazaar.db import Database
from bazaar.errors import Unauthorized
from bazaar.pagination import AnyRow
from bazaar.password_rules import PASSWORD_MAX_LENGTH
from bazaar.security import Passwords, TokenClaims, Tokens
from bazaar.users import service as users


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


@dataclass(frozen=True)
class Authenticated:
    """Who logged in, and the password hash their token is bound to."""

    user_id: int
    hashed_password: str


async def authenticate(
    database: Database, passwords: Passwords, *, email: str, password: str
) -> Authenticated | None:
    """The active user with this email and password, else None.

    The hash is verified with no connection held: the read gives its connection back
    first. A hash made with weaker parameters than today's is upgraded.
    """
    row = await database.read(users.read_credentials, email)
    if len(password) > PASSWORD_MAX_LENGTH:
        return None
    matches, new_hash = await passwords.verify(password, row.hashed_password if row else None)
    if row is None or not matches or not row.is_active:
        return None
    if new_hash is not None and await database.write_one(
        users.replace_hash, row.id, old_hash=row.hashed_password, new_hash=new_hash
    ):
        return Authenticated(row.id, new_hash)
    return Authenticated(row.id, row.hashed_password)
