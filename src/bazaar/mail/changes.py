"""Mail in the unit of work: a mail queued in the request's transaction, sent after it commits."""

from __future__ import annotations

from email.utils import make_msgid, parseaddr

from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.mail.models import OutboxMail


def message_id(mail_from: str) -> str:
    """A new `Message-ID` at the sender's domain."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return make_msgid(domain=domain)


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
