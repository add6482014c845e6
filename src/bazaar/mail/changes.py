"""Mail in the unit of work: a mail queued in the request's transaction, sent after it commits."""

from __future__ import annotations

import secrets
from email.utils import parseaddr

from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.mail.models import OutboxMail


def message_id(mail_from: str) -> str:
    """A new `Message-ID` at the sender's domain."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    # Not `email.utils.make_msgid`, which draws on the process's shared `random` state.
    return f"<{secrets.token_hex(16)}@{domain}>"


async def queue_mail(
    session: AsyncSession, *, mail_from: str, to: str, subject: str, body: str
) -> OutboxMail:
    """Put a mail in the outbox, in `session`'s transaction: it goes out if that commits,
    and never if it rolls back."""
    mail = OutboxMail(
        recipient=to, subject=subject, body=body, message_id=message_id(mail_from), attempts=0
    )
    session.add(mail)
    await session.flush()
    return mail
