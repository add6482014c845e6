"""The `users` table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, false, true
from sqlalchemy.orm import Mapped, mapped_column

from bazaar.db.base import Base, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=utcnow())

    # A deleted user's id is never handed out again on SQLite (see migration 0002).
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy's own mapping
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's own mapping


# What the API shows of a user, read as plain rows (never the password hash).
USER_COLUMNS = (
    User.id,
    User.name,
    User.email,
    User.is_active,
    User.is_admin,
    User.is_verified,
    User.created_at,
)
