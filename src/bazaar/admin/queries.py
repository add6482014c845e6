"""Who is signed in to the admin UI, read on the fast path on every request."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, select

from bazaar.auth.models import LoginSession
from bazaar.db.executor import AnyRow, Runs
from bazaar.users.models import USER_COLUMNS, User

# The API's check of a token's session (`auth.queries.signed_in_user`), for a cookie's,
# with the admin's flags in the same statement.
_SIGNED_IN_ADMIN = (
    select(*USER_COLUMNS)
    .join(LoginSession, LoginSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        User.is_active,
        User.is_admin,
        LoginSession.id == bindparam("session_id"),
        LoginSession.revoked_at.is_(None),
        LoginSession.expires_at > bindparam("now"),
    )
)
_ADMIN = select(User.id).where(User.id == bindparam("user_id"), User.is_active, User.is_admin)


def signed_in_admin(connection: Runs, user_id: int, session_id: str) -> AnyRow | None:
    """The user `user_id` while they are an active admin and their session `session_id` is
    open; None otherwise (deactivated, demoted, deleted, signed out, revoked, expired)."""
    values = {"user_id": user_id, "session_id": session_id, "now": datetime.now(UTC)}
    return connection.execute(_SIGNED_IN_ADMIN, values).first()


def is_admin(connection: Runs, user_id: int) -> bool:
    """Whether `user_id` is an active admin."""
    return connection.execute(_ADMIN, {"user_id": user_id}).first() is not None
