"""Logging in: the password checked with no connection held, the hash upgraded if weaker."""

from __future__ import annotations

from dataclasses import dataclass

from bazaar.auth import queries
from bazaar.db.executor import Executor
from bazaar.password_rules import PASSWORD_MAX_LENGTH
from bazaar.security import Passwords


@dataclass(frozen=True)
class Authenticated:
    """Who logged in, and the password hash they proved: their session opens only while it
    is still theirs."""

    user_id: int
    hashed_password: str


async def authenticate(
    executor: Executor, passwords: Passwords, *, email: str, password: str
) -> Authenticated | None:
    """The active user with this email and password, else None.

    The hash is verified with no connection held: the read gives its connection back
    first. A hash made with weaker parameters than today's is upgraded.
    """
    row = await executor.read(queries.read_credentials, email)
    if len(password) > PASSWORD_MAX_LENGTH:
        return None
    matches, new_hash = await passwords.verify(password, row.hashed_password if row else None)
    if row is None or not matches or not row.is_active:
        return None
    if new_hash is not None and await executor.write_one(
        queries.replace_hash, row.id, old_hash=row.hashed_password, new_hash=new_hash
    ):
        return Authenticated(row.id, new_hash)
    return Authenticated(row.id, row.hashed_password)
