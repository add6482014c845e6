"""The outbox on the fast path: what each worker's sender claims, and how it settles a claim.

Functions of a `Connection`, run by the executor, one statement each (a transaction of
its own: on SQLite under the write lock, which orders the workers' claims).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Integer, bindparam, delete, func, literal_column, null, or_, select, update

from bazaar.db.executor import AnyRow, Runs
from bazaar.mail.models import OutboxMail

# Mails a sender takes at once: each is leased for `lease`, which must cover sending all
# of them (SMTP timeouts included).
BATCH = 10

_PENDING = (OutboxMail.sent_at.is_(None), OutboxMail.failed_at.is_(None))

_STATE = select(func.count(), func.min(OutboxMail.next_attempt_at)).where(*_PENDING)

# Due mail, oldest due first. On PostgreSQL the rows are locked and those another worker
# locked are skipped, so two claims at once never take one row; SQLite runs one writer at
# a time (and SQLAlchemy leaves FOR UPDATE out there).
_DUE = (
    select(OutboxMail.id)
    .where(*_PENDING, OutboxMail.next_attempt_at <= bindparam("now"))
    .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
    # Written into the statement, as the 1 below: the executor's driver path binds only
    # the parameters a query function passes.
    .limit(literal_column(str(BATCH), Integer))
    .with_for_update(skip_locked=True)
)
# A claim: one more attempt, and nobody else's until the lease ends.
_CLAIM = (
    update(OutboxMail)
    .where(OutboxMail.id.in_(_DUE.scalar_subquery()))
    .values(
        attempts=OutboxMail.attempts + literal_column("1", Integer),
        next_attempt_at=bindparam("lease_end"),
    )
    .returning(
        OutboxMail.id,
        OutboxMail.recipient,
        OutboxMail.subject,
        OutboxMail.body,
        OutboxMail.message_id,
        OutboxMail.attempts,
        OutboxMail.created_at,
    )
)


def _settling(**values: object) -> object:
    # Only the claim being settled: a sender whose lease ran out (and whose mail another
    # sender took since) changes nothing.
    return (
        update(OutboxMail)
        .where(
            OutboxMail.id == bindparam("mail_id"),
            OutboxMail.attempts == bindparam("attempt"),
            *_PENDING,
        )
        .values(**values)
    )


_SENT = _settling(sent_at=bindparam("now"), last_error=null())
_RETRY = _settling(next_attempt_at=bindparam("retry_at"), last_error=bindparam("error"))
_FAILED = _settling(failed_at=bindparam("now"), last_error=bindparam("error"))


def state(connection: Runs) -> tuple[int, datetime | None]:
    """(mails pending, when the soonest of them falls due)."""
    row = connection.execute(_STATE).one()
    return int(row[0]), row[1]


def claim_due(connection: Runs, *, now: datetime, lease_end: datetime) -> Sequence[AnyRow]:
    """Take up to `BATCH` due mails for this sender until `lease_end`."""
    return connection.execute(_CLAIM, {"now": now, "lease_end": lease_end}).all()


def mark_sent(connection: Runs, mail_id: int, *, attempt: int, now: datetime) -> bool:
    params = {"mail_id": mail_id, "attempt": attempt, "now": now}
    return connection.execute(_SENT, params).rowcount == 1


def put_off(
    connection: Runs, mail_id: int, *, attempt: int, retry_at: datetime, error: str
) -> bool:
    params = {"mail_id": mail_id, "attempt": attempt, "retry_at": retry_at, "error": error}
    return connection.execute(_RETRY, params).rowcount == 1


def mark_failed(connection: Runs, mail_id: int, *, attempt: int, now: datetime, error: str) -> bool:
    params = {"mail_id": mail_id, "attempt": attempt, "now": now, "error": error}
    return connection.execute(_FAILED, params).rowcount == 1


_PRUNE = delete(OutboxMail).where(
    or_(
        OutboxMail.sent_at < bindparam("sent_before"),
        OutboxMail.failed_at < bindparam("failed_before"),
    )
)


def prune_mail(connection: Runs, *, keep_sent: timedelta, keep_failed: timedelta) -> int:
    """Delete mail sent longer than `keep_sent` ago or given up on longer than
    `keep_failed` ago; how many."""
    now = datetime.now(UTC)
    values = {"sent_before": now - keep_sent, "failed_before": now - keep_failed}
    return connection.execute(_PRUNE, values).rowcount
