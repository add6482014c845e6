"""One-time links on the fast path: whose a link is, read without using it up; the
pruning of expired ones."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, delete, select

from bazaar.accounts.changes import Purpose, digest
from bazaar.accounts.models import OneTimeToken
from bazaar.db.executor import AnyRow, Runs
from bazaar.users.models import User

_OWNER = (
    select(User.id, User.email)
    .join(OneTimeToken, OneTimeToken.user_id == User.id)
    .where(
        OneTimeToken.token_hash == bindparam("token_hash"),
        OneTimeToken.purpose == bindparam("purpose"),
        OneTimeToken.used_at.is_(None),
        OneTimeToken.expires_at > bindparam("now"),
        OneTimeToken.email == User.email,
        User.is_active.is_(True),
    )
)

_PRUNE = delete(OneTimeToken).where(OneTimeToken.expires_at <= bindparam("now"))


def token_owner(connection: Runs, token: str, purpose: Purpose) -> AnyRow | None:
    """(id, email) of the user a live link of `purpose` with this token is for, else None.

    A link's page and a reset's checks read this; only `changes.use_token` uses a link up.
    """
    hashed = digest(token)
    if hashed is None:
        return None
    params = {"token_hash": hashed, "purpose": purpose.value, "now": datetime.now(UTC)}
    return connection.execute(_OWNER, params).first()


def prune_links(connection: Runs) -> int:
    """Delete links past their expiry, used or not; how many."""
    return connection.execute(_PRUNE, {"now": datetime.now(UTC)}).rowcount
