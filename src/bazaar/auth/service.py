"""Checking credentials."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.fields import PASSWORD_MAX_LENGTH
from bazaar.security import Passwords
from bazaar.users import service as users
from bazaar.users.models import User


async def authenticate(
    session: AsyncSession, *, email: str, password: str, passwords: Passwords
) -> User | None:
    """The active user with this email and password, else None.

    Upgrades the stored hash when it was made with outdated parameters.
    """
    user = await users.find_user_by_email(session, email)
    if len(password) > PASSWORD_MAX_LENGTH:
        return None
    matches, new_hash = await passwords.verify(password, user.hashed_password if user else None)
    if user is None or not matches or not user.is_active:
        return None
    if new_hash is not None:
        try:
            async with session.begin_nested():
                user.hashed_password = new_hash
        except OperationalError:
            # On SQLite another writer may hold the lock: keep the old hash, it
            # is still valid, and upgrade it at a later login.
            pass
    return user
