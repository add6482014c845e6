"""Sessions and their refresh tokens: the `sessions` and `refresh_tokens` tables.

A login opens a session: one row, with an opaque random id that access tokens name
(`sid`), checked in the same read that loads the signed-in user, so that an ended
session's access token is refused on its next request, on every worker and host.

Each refresh token is a row of its own: the SHA-256 of 256 random bits (the token is
never stored, so a copy of the database holds no usable token), its session, when it
was issued, when it expires and when it was used. A token is good for one use:
refreshing claims it with one conditional UPDATE (`used_at IS NULL`), so that of two
concurrent refreshes exactly one claims it; on PostgreSQL the other waits for the
row, then finds it used, and on SQLite the write lock orders them. The loser, like
any client presenting a token used less than `REUSE_GRACE` ago (two tabs refreshing
at once), gets a fresh pair of the same session: both succeed, neither forks the
session. A token used longer ago than that is a stolen copy (or its owner's, the
thief having used it first): the session ends, with every token it issued.

A session ends when it is revoked (`revoked_at`: logout, a password change, a
deactivation, an admin), at its absolute expiry (`expires_at`) whatever its use, or
with its user (ON DELETE CASCADE). Ended sessions and expired tokens are pruned.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from bazaar.db.base import Base, UTCDateTime

# How long a used refresh token still gets a fresh pair (concurrent refreshes of one
# client) before it counts as stolen.
REUSE_GRACE = timedelta(seconds=10)
# What is kept of a client's User-Agent: enough to tell browsers and devices apart.
USER_AGENT_LENGTH = 200


class LoginSession(Base):
    __tablename__ = "sessions"

    # 128 random bits, URL-safe: never a counter, so one session's id says nothing of others.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The login or the latest refresh (not every request: that would be a write per read).
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_LENGTH))
    ip: Mapped[str | None] = mapped_column(String(64))


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    # Hex SHA-256 of the token.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
