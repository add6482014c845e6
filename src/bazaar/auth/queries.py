"""Who is calling, read on the fast path: a token's user, and the credentials a login checks.

Functions of a `Connection`, run by the executor. Auth owns these reads of the
`users` table: the users domain asks auth who is calling, never the other way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select, update

from bazaar.db.executor import AnyRow, Runs
from bazaar.errors import Unauthorized
from bazaar.security import TokenClaims, Tokens
from bazaar.users.models import USER_COLUMNS, User


@dataclass(frozen=True)
class Bearer:
    """The claims of a genuine, unexpired token, whose user is yet to be checked."""

    claims: TokenClaims
    tokens: Tokens


# Who signs in: what they may see of themselves, and the hash their token is bound to.
_SIGNED_IN_BY_ID = select(*USER_COLUMNS, User.hashed_password).where(
    User.id == bindparam("user_id")
)
_CREDENTIALS_BY_EMAIL = select(User.id, User.hashed_password, User.is_active).where(
    User.email == bindparam("email")
)
# Only over the hash that was verified: a password changed meanwhile is not overwritten.
_REPLACE_HASH = (
    update(User)
    .where(User.id == bindparam("user_id"), User.hashed_password == bindparam("old_hash"))
    .values(hashed_password=bindparam("new_hash"))
)


def signed_in_user(connection: Runs, bearer: Bearer) -> AnyRow:
    """The user `bearer` names, with their password hash; Unauthorized unless they still
    exist, are active and have the password the token was issued for.

    Read on every request, so that a token stops working the moment its user is
    deleted, deactivated or changes password.
    """
    row = connection.execute(_SIGNED_IN_BY_ID, {"user_id": bearer.claims.user_id}).first()
    if (
        row is None
        or not row.is_active
        or bearer.tokens.password_stamp(row.hashed_password) != bearer.claims.password_stamp
    ):
        raise Unauthorized("Invalid or expired token")
    return row


def read_credentials(connection: Runs, email: str) -> AnyRow | None:
    """(id, hashed_password, is_active) of the user with this email, or None."""
    if "\x00" in email:
        # No stored email has one, and PostgreSQL refuses NUL in a query's text.
        return None
    return connection.execute(_CREDENTIALS_BY_EMAIL, {"email": email}).first()


def replace_hash(connection: Runs, user_id: int, *, old_hash: str, new_hash: str) -> bool:
    """Store `new_hash` for the user whose hash is still `old_hash`; whether it was stored."""
    values = {"user_id": user_id, "old_hash": old_hash, "new_hash": new_hash}
    return connection.execute(_REPLACE_HASH, values).rowcount == 1
