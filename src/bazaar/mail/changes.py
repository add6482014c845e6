"""Mail in the unit of work: a mail queued in the request's transaction, sent after it commits."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from email.utils import parseaddr

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.audit import changes as audit
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


async def retry_mail(session: AsyncSession, mail_id: int) -> bool:
    """Give a mail that was given up one more try, due now; False when it had not failed.

    One more try, not another day of them: the sender gives up on a mail whose retries
    would take it past a day from its queueing, so a retried mail that fails is failed
    again (and can be retried again).
    """
    # Locked: a second retry of the same mail waits, then finds it pending.
    failed_at = await session.scalar(
        select(OutboxMail.failed_at).where(OutboxMail.id == mail_id).with_for_update()
    )
    if failed_at is None:
        return False
    await session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == mail_id)
        .values(failed_at=None, next_attempt_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    await audit.record(
        session,
        action="mail.retry",
        target_type="mail",
        target_id=mail_id,
        changes={"failed_at": (failed_at, None)},
    )
    return True
