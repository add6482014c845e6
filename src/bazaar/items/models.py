"""The `items` table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bazaar.db.base import Base, UTCDateTime, utcnow


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    price: Mapped[float] = mapped_column(Float)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=utcnow())
    version: Mapped[int] = mapped_column(Integer)

    # One index per sort key, each ending in id: keyset pagination seeks on
    # (key, id) under every sort, and (owner_id, id) serves an owner's list.
    __table_args__ = (
        Index("ix_items_owner_id_id", "owner_id", "id"),
        Index("ix_items_price_id", "price", "id"),
        Index("ix_items_name_id", "name", "id"),
        Index("ix_items_created_at_id", "created_at", "id"),
        # A deleted item's id, and so its URL and ETag, never names a newer item on SQLite.
        {"sqlite_autoincrement": True},
    )
    __mapper_args__ = {"version_id_col": version, "eager_defaults": True}  # noqa: RUF012
