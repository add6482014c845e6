"""Who is signed in to the admin UI, read on the fast path on every request."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from bazaar.db.executor import AnyRow, Runs
from bazaar.security import Tokens
from bazaar.users.models import USER_COLUMNS, User

_USER_WITH_HASH = select(*USER_COLUMNS, User.hashed_password).where(User.id == bindparam("user_id"))


def signed_in_admin(connection: Runs, user_id: int, stamp: str, tokens: Tokens) -> AnyRow | None:
    """The user `user_id` while they are an active admin whose password is still the one
    `stamp` was made from; None otherwise (deactivated, demoted, deleted, new password)."""
    row = connection.execute(_USER_WITH_HASH, {"user_id": user_id}).first()
    if (
        row is None
        or not row.is_active
        or not row.is_admin
        or tokens.password_stamp(row.hashed_password) != stamp
    ):
        return None
    return row
