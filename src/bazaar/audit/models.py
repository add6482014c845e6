"""The `audit_events` table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bazaar.db.base import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    """One change: who (`actor_id`, None when no signed-in user made it), what (`action`,
    and the changed fields' old and new values), to which row, from which request."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=utcnow())
    # No foreign key: the record of who did something outlives their account.
    actor_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    target_type: Mapped[str] = mapped_column(String(20))
    # A string: sessions have opaque ids, users and items integers.
    target_id: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(128))
    client_address: Mapped[str | None] = mapped_column(String(64))

    # The admin UI lists the newest first, filtered by actor or by target: each filter
    # seeks an index that ends in id.
    __table_args__ = (
        Index("ix_audit_events_actor_id_id", "actor_id", "id"),
        Index("ix_audit_events_target_type_target_id_id", "target_type", "target_id", "id"),
        # An event's id is never handed out again on SQLite (SPEC §3).
        {"sqlite_autoincrement": True},
    )
