"""Who is calling, read on the fast path: a token's user and session, the credentials a
login checks, a user's open sessions, and the pruning of ended ones.

Functions of a `Connection`, run by the executor. Auth owns these reads of the
`users` table: the users domain asks auth who is calling, never the other way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, delete, or_, select, update

from bazaar.auth.models import LoginSession, RefreshToken
from bazaar.db.executor import AnyRow, Runs
from bazaar.errors import Unauthorized
from bazaar.security import TokenClaims, Tokens
from bazaar.users.models import USER_COLUMNS, User


@dataclass(frozen=True)
class Bearer:
    """The claims of a genuine, unexpired token, whose user is yet to be checked."""

    claims: TokenClaims
    tokens: Tokens


# Who signs in: what they may see of themselves (and their hash, which a password change
# checks), provided the session their token names is open.
_SIGNED_IN = (
    select(*USER_COLUMNS, User.hashed_password)
    .join(LoginSession, LoginSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        LoginSession.id == bindparam("session_id"),
        LoginSession.revoked_at.is_(None),
        LoginSession.expires_at > bindparam("now"),
    )
)
SESSION_COLUMNS = (
    LoginSession.id,
    LoginSession.created_at,
    LoginSession.last_used_at,
    LoginSession.expires_at,
    LoginSession.user_agent,
    LoginSession.ip,
)
_OPEN_SESSIONS = (
    select(*SESSION_COLUMNS)
    .where(
        LoginSession.user_id == bindparam("user_id"),
        LoginSession.revoked_at.is_(None),
        LoginSession.expires_at > bindparam("now"),
    )
    .order_by(LoginSession.last_used_at.desc(), LoginSession.id)
)
_PRUNE_SESSIONS = delete(LoginSession).where(
    or_(LoginSession.revoked_at.is_not(None), LoginSession.expires_at <= bindparam("now"))
)
_PRUNE_REFRESH_TOKENS = delete(RefreshToken).where(RefreshToken.expires_at <= bindparam("now"))
_CREDENTIALS_BY_EMAIL = select(User.id, User.hashed_password, User.is_active, User.is_admin).where(
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
    exist, are active, and the session the token was issued in is open.

    Read on every request, in one statement, so that a token stops working the moment
    its session ends (logout, revocation, a password change, a deactivation) or its
    user is deleted, whichever worker or host serves the next request.
    """
    row = session_user(connection, bearer.claims.user_id, bearer.claims.session_id)
    if row is None:
        raise Unauthorized("Invalid or expired token")
    return row


def session_user(connection: Runs, user_id: int, session_id: str) -> AnyRow | None:
    """The user `user_id` (with their password hash) while they are active and their
    session `session_id` is open; None otherwise. A token's check, and the admin UI
    cookie's."""
    parameters = {"user_id": user_id, "session_id": session_id, "now": _now()}
    row = connection.execute(_SIGNED_IN, parameters).first()
    return row if row is not None and row.is_active else None


def open_sessions(connection: Runs, bearer: Bearer) -> tuple[AnyRow, list[AnyRow]]:
    """The caller `bearer` names and their open sessions, most recently used first."""
    caller = signed_in_user(connection, bearer)
    parameters = {"user_id": caller.id, "now": _now()}
    return caller, list(connection.execute(_OPEN_SESSIONS, parameters).all())


def prune_sessions(connection: Runs) -> int:
    """Delete ended sessions (their refresh tokens go with them); how many."""
    return connection.execute(_PRUNE_SESSIONS, {"now": _now()}).rowcount


def prune_refresh_tokens(connection: Runs) -> int:
    """Delete refresh tokens past their expiry, used or not; how many."""
    return connection.execute(_PRUNE_REFRESH_TOKENS, {"now": _now()}).rowcount


def _now() -> datetime:
    return datetime.now(UTC)


def read_credentials(connection: Runs, email: str) -> AnyRow | None:
    """(id, hashed_password, is_active, is_admin) of the user with this email, or None."""
    if "\x00" in email:
        # No stored email has one, and PostgreSQL refuses NUL in a query's text.
        return None
    return connection.execute(_CREDENTIALS_BY_EMAIL, {"email": email}).first()


def replace_hash(connection: Runs, user_id: int, *, old_hash: str, new_hash: str) -> bool:
    """Store `new_hash` for the user whose hash is still `old_hash`; whether it was stored."""
    values = {"user_id": user_id, "old_hash": old_hash, "new_hash": new_hash}
    return connection.execute(_REPLACE_HASH, values).rowcount == 1
