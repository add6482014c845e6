"""Sessions in the unit of work: opening, refreshing and ending them, functions of the
request's `AsyncSession` (the design is in `bazaar.auth.models`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.audit import changes as audit
from bazaar.auth.models import REUSE_GRACE, USER_AGENT_LENGTH, LoginSession, RefreshToken
from bazaar.errors import NotFound, Unauthorized
from bazaar.security import new_secret_token, new_session_id, token_hash
from bazaar.users.models import User


@dataclass(frozen=True)
class Lifetimes:
    """How long a refresh token lives from its issue, and a session from its login."""

    refresh: timedelta
    session: timedelta


@dataclass(frozen=True)
class Issued:
    """A session's new refresh token (the only time it exists outside the client)."""

    user_id: int
    session_id: str
    refresh_token: str
    refresh_expires_at: datetime


def _live_session(now: datetime) -> Select[str]:
    return select(LoginSession.id).where(
        LoginSession.revoked_at.is_(None), LoginSession.expires_at > now
    )


async def open_session(
    session: AsyncSession,
    *,
    user_id: int,
    hashed_password: str,
    user_agent: str | None,
    ip: str,
    lifetimes: Lifetimes,
) -> Issued:
    """Open a session for a user who just proved the password `hashed_password` is the
    hash of; Unauthorized when they were deleted, deactivated or changed their password
    meanwhile.

    The user's row is share-locked until the session is committed: a password change or
    deactivation (which lock it to update it) comes either before, and is seen here, or
    after, and ends this session with the others.
    """
    current = await session.scalar(
        select(User.hashed_password)
        .where(User.id == user_id, User.is_active)
        .with_for_update(read=True)
    )
    if current != hashed_password:
        raise Unauthorized("Incorrect email or password")
    now = datetime.now(UTC)
    opened = LoginSession(
        id=new_session_id(),
        user_id=user_id,
        created_at=now,
        last_used_at=now,
        expires_at=now + lifetimes.session,
        user_agent=user_agent[:USER_AGENT_LENGTH] if user_agent else None,
        ip=ip,
    )
    session.add(opened)
    await session.flush()
    return await _issue(session, opened.user_id, opened.id, opened.expires_at, now, lifetimes)


async def _issue(
    session: AsyncSession,
    user_id: int,
    session_id: str,
    session_expires_at: datetime,
    now: datetime,
    lifetimes: Lifetimes,
) -> Issued:
    token = new_secret_token()
    expires_at = min(now + lifetimes.refresh, session_expires_at)
    session.add(
        RefreshToken(
            token_hash=token_hash(token),
            session_id=session_id,
            issued_at=now,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return Issued(user_id, session_id, token, expires_at)


async def refresh(session: AsyncSession, *, token: str, lifetimes: Lifetimes) -> Issued | None:
    """Use `token` up and issue the next of its session; None when it is unknown, expired,
    or its session ended.

    A token used within `REUSE_GRACE` gets a fresh pair of the same session; one used
    longer ago ends its session (someone holds a stolen copy), and the caller must commit
    that before it refuses the request.
    """
    now = datetime.now(UTC)
    hashed = token_hash(token)
    claimed = await session.scalar(
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == hashed,
            RefreshToken.used_at.is_(None),
            RefreshToken.expires_at > now,
            RefreshToken.session_id.in_(_live_session(now)),
        )
        .values(used_at=now)
        .returning(RefreshToken.session_id)
    )
    if claimed is None:
        used = (
            await session.execute(
                select(RefreshToken.session_id, RefreshToken.used_at).where(
                    RefreshToken.token_hash == hashed, RefreshToken.expires_at > now
                )
            )
        ).first()
        if used is None or used.used_at is None:
            return None  # unknown, expired, or unused in a session that ended
        if now - used.used_at > REUSE_GRACE:
            if await _revoke(session, LoginSession.id == used.session_id, now):
                owner = await session.scalar(
                    select(LoginSession.user_id).where(LoginSession.id == used.session_id)
                )
                if owner is not None:
                    await _record_revocation(session, owner, used.session_id, reused=True)
            return None
        claimed = used.session_id
    live = (
        await session.execute(
            update(LoginSession)
            .where(LoginSession.id == claimed, LoginSession.id.in_(_live_session(now)))
            .values(last_used_at=now)
            .returning(LoginSession.user_id, LoginSession.expires_at)
        )
    ).first()
    if live is None:
        return None
    return await _issue(session, live.user_id, claimed, live.expires_at, now, lifetimes)


async def _revoke(session: AsyncSession, which: ColumnElement[bool], now: datetime) -> int:
    """End the open sessions `which` selects; how many."""
    result = await session.execute(
        update(LoginSession)
        .where(which, LoginSession.revoked_at.is_(None), LoginSession.expires_at > now)
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    count: int = result.rowcount  # type: ignore[attr-defined]
    return count


async def end_session(session: AsyncSession, *, user_id: int, session_id: str) -> None:
    """End one of the user's open sessions; NotFound when they have no such open session
    (someone else's is as unknown as a made-up one)."""
    which = (LoginSession.id == session_id) & (LoginSession.user_id == user_id)
    if not await _revoke(session, which, datetime.now(UTC)):
        raise NotFound("Session not found")
    await _record_revocation(session, user_id, session_id)


async def _record_revocation(
    session: AsyncSession, user_id: int, session_id: str, *, reused: bool = False
) -> None:
    # Under the user it signed in, so that their account's trail shows it; a session
    # ended because its refresh token was used twice is told apart.
    await audit.record(
        session,
        action="session.revoke_reused_token" if reused else "session.revoke",
        target_type="user",
        target_id=user_id,
        changes={"session": (session_id, None)},
    )


async def end_sessions(session: AsyncSession, user_id: int) -> int:
    """End every open session of the user (a password change, a deactivation, an admin's
    or their own "sign out everywhere"); how many were open."""
    ended = await _revoke(session, LoginSession.user_id == user_id, datetime.now(UTC))
    if ended:
        await audit.record(
            session,
            action="user.sessions_revoke",
            target_type="user",
            target_id=user_id,
            changes={"open_sessions": (ended, 0)},
        )
    return ended
