"""The `outbox` table: mail written in the same transaction as whatever caused it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from bazaar.db.base import Base, UTCDateTime, utcnow


class OutboxMail(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # Made when the mail is queued and kept through retries: a receiver that got a mail
    # twice (a sender died after the server took it) can tell it is the same one.
    message_id: Mapped[str] = mapped_column(String(250))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=utcnow())
    # Sends begun, the one in flight included: a claim's number, so that only the sender
    # that made the claim can settle it.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # When a sender may take it next: due now when queued; while a sender holds it, the
    # end of its lease (a sender that dies mid-send leaves it to be taken again then).
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=utcnow())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # What senders look for: the pending mail, in the order it falls due.
        Index(
            "ix_outbox_pending_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text("sent_at IS NULL AND failed_at IS NULL"),
            sqlite_where=text("sent_at IS NULL AND failed_at IS NULL"),
        ),
        {"sqlite_autoincrement": True},
    )
