"""One-time links in the unit of work: issued with the mail that carries them, used once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.accounts import mails
from bazaar.accounts.models import OneTimeToken
from bazaar.config import Settings
from bazaar.errors import BadRequest
from bazaar.mail.changes import queue_mail
from bazaar.users.models import User

INVALID_TOKEN = "Invalid or expired token"  # noqa: S105 - an error message


class Purpose(StrEnum):
    VERIFY_EMAIL = "verify-email"
    RESET_PASSWORD = "reset-password"  # noqa: S105 - a purpose, not a password


LIFETIMES = {Purpose.VERIFY_EMAIL: timedelta(hours=48), Purpose.RESET_PASSWORD: timedelta(hours=1)}
# 256 random bits, as `secrets.token_urlsafe(32)` writes them: 43 characters.
TOKEN_BYTES = 32
TOKEN_LENGTH = 43
_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def digest(token: str) -> bytes | None:
    """The SHA-256 a token is stored as; None for text that no token Bazaar makes can be
    (so that it costs no database work)."""
    if len(token) != TOKEN_LENGTH or not set(token) <= _TOKEN_ALPHABET:
        return None
    return hashlib.sha256(token.encode("ascii")).digest()


def _now() -> datetime:
    return datetime.now(UTC)


async def issue_token(session: AsyncSession, *, user: User, purpose: Purpose) -> str:
    """A new link's token for `user`, for their current email; their older links of the
    same purpose end (deleted: the table holds one per user and purpose at most)."""
    await session.execute(
        delete(OneTimeToken).where(
            OneTimeToken.user_id == user.id, OneTimeToken.purpose == purpose.value
        )
    )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    hashed = digest(token)
    assert hashed is not None  # noqa: S101 - token_urlsafe's own alphabet and length
    session.add(
        OneTimeToken(
            token_hash=hashed,
            purpose=purpose.value,
            user_id=user.id,
            email=user.email,
            expires_at=_now() + LIFETIMES[purpose],
        )
    )
    await session.flush()
    return token


async def end_tokens(session: AsyncSession, *, user_id: int, purpose: Purpose) -> None:
    """End the user's links of this purpose (a password changed otherwise ends reset links)."""
    await session.execute(
        delete(OneTimeToken).where(
            OneTimeToken.user_id == user_id, OneTimeToken.purpose == purpose.value
        )
    )


async def use_token(session: AsyncSession, token: str, purpose: Purpose) -> User:
    """Use `token` up, once; its user, loaded and locked to be changed. BadRequest for a
    token that is unknown, expired, used, ended by a newer one, or sent to an address the
    user no longer has, or whose user is deactivated."""
    hashed = digest(token)
    if hashed is None:
        raise BadRequest(INVALID_TOKEN)
    now = _now()
    # One statement, so that two requests with the same token cannot both use it: the
    # second finds it used (PostgreSQL re-checks the row once the first commits; SQLite
    # runs one writer at a time).
    used = (
        await session.execute(
            update(OneTimeToken)
            .where(
                OneTimeToken.token_hash == hashed,
                OneTimeToken.purpose == purpose.value,
                OneTimeToken.used_at.is_(None),
                OneTimeToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(OneTimeToken.token_hash, OneTimeToken.user_id, OneTimeToken.email),
            execution_options={"synchronize_session": False},
        )
    ).first()
    # Found by its digest's index; compared once more in constant time all the same.
    if used is None or not hmac.compare_digest(used.token_hash, hashed):
        raise BadRequest(INVALID_TOKEN)
    user = await session.get(User, used.user_id, with_for_update={"key_share": True})
    if user is None or user.email != used.email or not user.is_active:
        raise BadRequest(INVALID_TOKEN)
    return user


async def send_verification(session: AsyncSession, user: User, *, settings: Settings) -> None:
    """Mail `user` a link that verifies their current email (older ones end)."""
    token = await issue_token(session, user=user, purpose=Purpose.VERIFY_EMAIL)
    letter = mails.verification(
        name=user.name,
        email=user.email,
        link=mails.link(settings.public_url, "verify-email", token),
    )
    await _post(session, letter, to=user.email, settings=settings)


async def _post(
    session: AsyncSession, letter: mails.Letter, *, to: str, settings: Settings
) -> None:
    await queue_mail(
        session, mail_from=settings.mail_from, to=to, subject=letter.subject, body=letter.body
    )


async def send_email_changed(
    session: AsyncSession, user: User, *, old_email: str, settings: Settings
) -> None:
    """Tell the old address that the account's email changed."""
    letter = mails.email_changed(name=user.name, old_email=old_email)
    await _post(session, letter, to=old_email, settings=settings)


async def send_reset_link(session: AsyncSession, *, email: str, settings: Settings) -> bool:
    """Mail a reset link to the active account with this email, if there is one; whether
    a mail was queued."""
    user = await session.scalar(
        select(User).where(User.email == email).with_for_update(key_share=True)
    )
    if user is None or not user.is_active:
        return False
    token = await issue_token(session, user=user, purpose=Purpose.RESET_PASSWORD)
    letter = mails.password_reset(
        name=user.name, link=mails.link(settings.public_url, "reset-password", token)
    )
    await _post(session, letter, to=user.email, settings=settings)
    return True


async def verify_email(session: AsyncSession, token: str) -> User:
    """Use a verification link: its user's email is verified."""
    user = await use_token(session, token, Purpose.VERIFY_EMAIL)
    user.is_verified = True
    await session.flush()
    return user
