"""Logging in, for the API and the admin UI alike: throttled, the password checked with no
connection held (the hash upgraded if weaker), and a session opened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bazaar.auth import changes, queries
from bazaar.auth.changes import Issued, Lifetimes
from bazaar.config import Settings
from bazaar.db.executor import Executor
from bazaar.db.unit_of_work import transaction
from bazaar.password_rules import PASSWORD_MAX_LENGTH
from bazaar.security import Passwords
from bazaar.services import Services


@dataclass(frozen=True)
class Authenticated:
    """Who logged in, and the password hash they proved: their session opens only while it
    is still theirs."""

    user_id: int
    hashed_password: str
    is_admin: bool


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
        return Authenticated(row.id, new_hash, row.is_admin)
    return Authenticated(row.id, row.hashed_password, row.is_admin)


def lifetimes(settings: Settings) -> Lifetimes:
    """How long refresh tokens and sessions live, by the settings."""
    return Lifetimes(
        refresh=timedelta(days=settings.refresh_token_days),
        session=timedelta(days=settings.session_days),
    )


async def log_in(
    app: Services,
    *,
    email: str,
    password: str,
    address: str,
    user_agent: str | None,
    admins_only: bool = False,
) -> Issued | None:
    """A new session for the active user (an admin, with `admins_only`) with this email
    and password; None when there is none.

    The attempt is spent from the throttle's budgets before the password is checked, so
    that concurrent guesses cannot overshoot; given back when the check could not be made
    (the database or the hashing unavailable), which is not a failed login.
    """
    throttle = app.throttle
    attempt = throttle.login(email=email, address=address)
    await throttle.spend(attempt)
    try:
        user = await authenticate(app.executor, app.passwords, email=email, password=password)
        if user is None:
            return None
        opened = None
        if user.is_admin or not admins_only:
            async with transaction(app) as session:
                opened = await changes.open_session(
                    session,
                    user_id=user.user_id,
                    hashed_password=user.hashed_password,
                    user_agent=user_agent,
                    ip=address,
                    lifetimes=lifetimes(app.settings),
                )
    except Exception:
        await throttle.give_back(attempt)
        raise
    # The right password, of an admin or not: the pair's failures are forgiven.
    await throttle.succeeded(attempt)
    return opened
