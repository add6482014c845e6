"""Who is signed in to the admin UI, read on the fast path on every request."""

from __future__ import annotations

from bazaar.auth.queries import session_user
from bazaar.db.executor import AnyRow, Runs


def signed_in_admin(connection: Runs, user_id: int, session_id: str) -> AnyRow | None:
    """The user `user_id` while they are an active admin and their session `session_id` is
    open; None otherwise (deactivated, demoted, deleted, signed out, revoked, expired).

    The API's check of a token's session (`auth.queries.session_user`), for a cookie's.
    """
    row = session_user(connection, user_id, session_id)
    return row if row is not None and row.is_admin else None
