"""The sender each worker runs in the background: it claims due mail from the outbox,
sends it, and settles each claim (sent, put off for a retry, or given up on).

At least once: a mail is marked sent only after the server took it, so a sender that
dies mid-send leaves its claim to run out and the mail to be taken again. Never by two
senders at once: a claim leases the rows (taken under `FOR UPDATE SKIP LOCKED` on
PostgreSQL, under the write lock on SQLite) until the lease ends, longer than a batch
can take. No request waits for any of it: requests only write rows and wake the sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from bazaar.db.executor import AnyRow, Executor
from bazaar.mail import queries
from bazaar.ops.metrics import Metrics

logger = logging.getLogger(__name__)

# Each connect and each SMTP command gets this long; a batch of `queries.BATCH` mails
# thus takes a few minutes at the very worst, well within the lease.
SMTP_TIMEOUT_SECONDS = 20.0
LEASE = timedelta(minutes=10)
# Retries wait twice as long each time, up to an hour, for a day; then the mail is failed.
MAX_DELAY = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=1)
# How long shutdown lets a send in flight finish before it is cancelled (its claim then
# runs out and another sender takes the mail).
STOP_SECONDS = 5.0

Send = Callable[[EmailMessage], Awaitable[None]]


class Transport(Protocol):
    def connect(self) -> contextlib.AbstractAsyncContextManager[Send]:
        """A way to send messages, for one batch."""
        ...


class LogTransport:
    """Writes each mail to the log (no `BAZAAR_SMTP_URL`): development needs no server."""

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Send]:
        async def send(message: EmailMessage) -> None:
            body = message.get_content().strip()
            logger.info(
                "mail (not sent: BAZAAR_SMTP_URL is empty) to %s, subject %r: %s",
                message["To"],
                message["Subject"],
                body,
            )

        yield send


class SMTPTransport:
    """Sends through the server `BAZAAR_SMTP_URL` names, with aiosmtplib.

    `smtps://` speaks TLS from the start; `smtp://` upgrades with STARTTLS whenever the
    server offers it. Credentials go only over TLS: a server that offers no STARTTLS is
    sent none (and may then refuse the mail, which is retried).
    """

    def __init__(self, url: str, *, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        parts = urlsplit(url)
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname or "localhost"
        self._port = parts.port
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password or "")
        self._timeout = timeout

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Send]:
        smtp = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            use_tls=self._tls,
            start_tls=None if not self._tls else False,
            timeout=self._timeout,
            tls_context=ssl.create_default_context(),
        )
        try:
            # Inside the `try`: a STARTTLS refused during connect (a certificate nobody
            # vouches for) leaves an open socket that only `close` ends.
            await smtp.connect()
            if self._username is not None:
                if self._tls or smtp.get_transport_info("sslcontext") is not None:
                    await smtp.login(self._username, self._password)
                else:
                    logger.warning(
                        "the SMTP server %s offers no STARTTLS: sending without credentials",
                        self._host,
                    )

            async def send(message: EmailMessage) -> None:
                await smtp.send_message(message)

            yield send
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()
            smtp.close()


def transport_for(smtp_url: str) -> Transport:
    return SMTPTransport(smtp_url) if smtp_url else LogTransport()


# A generator of its own: the process's shared `random` state is the caller's business.
_JITTER = random.SystemRandom()


def retry_delay(first: timedelta, attempt: int, *, longest: timedelta = MAX_DELAY) -> timedelta:
    """How long a mail waits after its `attempt`-th failed attempt: `first`, then twice as
    long each time, up to `longest` (5 s, 10 s, 20 s... an hour: about 30 tries a day)."""
    # Capped before it is computed: 2 ** attempt grows past what a timedelta holds.
    doublings = min(attempt - 1, 32)
    delay: timedelta = first * (1 << doublings)
    return min(delay, longest)


def _now() -> datetime:
    return datetime.now(UTC)


class MailSender:
    """Sends the outbox's due mail, in a background task of the worker's own."""

    def __init__(
        self,
        executor: Executor,
        transport: Transport,
        metrics: Metrics,
        *,
        mail_from: str,
        poll_seconds: float = 10.0,
        retry_seconds: float = 5.0,
        lease: timedelta = LEASE,
        max_delay: timedelta = MAX_DELAY,
        give_up_after: timedelta = GIVE_UP_AFTER,
    ) -> None:
        self._executor = executor
        self._transport = transport
        self._metrics = metrics
        self._mail_from = mail_from
        self._poll = poll_seconds
        self._first_delay = timedelta(seconds=retry_seconds)
        self._lease = lease
        self._max_delay = max_delay
        self._give_up_after = give_up_after
        self._woken = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="bazaar-mail-sender")

    def wake(self) -> None:
        """Look at the outbox now (a request just committed a mail)."""
        self._woken.set()

    async def stop(self) -> None:
        """Stop, letting a send in flight finish for a few seconds."""
        self._stopping = True
        self._woken.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_SECONDS)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        # The first look comes a while after start-up, drawn at random: workers started
        # together do not all look at once, and a worker that is only starting (or a
        # test of something else) sees no mail traffic. A request's mail wakes it sooner.
        await self._sleep(self._poll * _JITTER.uniform(0.5, 1.0))
        while not self._stopping:
            try:
                wait = await self.run_once()
            except Exception:
                # The database away, say: look again later, as the requests will.
                logger.exception("the mail sender could not read the outbox")
                wait = self._poll
            await self._sleep(wait)

    async def _sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less when woken."""
        if seconds > 0 and not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), seconds)
        self._woken.clear()

    async def run_once(self) -> float:
        """Send what is due now; the seconds until more falls due (at most the poll's)."""
        pending, next_due = await self._executor.read(queries.state)
        self._metrics.mails_pending.set(pending)
        now = _now()
        if next_due is None:
            return self._poll
        if next_due > now:
            return min(self._poll, (next_due - now).total_seconds())
        # Read first and claim only then: an idle poll takes no write lock.
        claimed = await self._executor.write_one(
            queries.claim_due, now=now, lease_end=now + self._lease
        )
        if claimed:
            await self._send(claimed)
        # Straight on: more may be due, or the state has changed under a rival's claim.
        return 0

    async def _send(self, claimed: Sequence[AnyRow]) -> None:
        rows = list(claimed)
        try:
            async with self._transport.connect() as send:
                while rows:
                    mail = rows.pop(0)
                    try:
                        await send(self._message(mail))
                    except (
                        aiosmtplib.SMTPResponseException,
                        aiosmtplib.SMTPRecipientsRefused,
                    ) as exc:
                        # This mail was refused; the connection is still good for the rest.
                        await self._put_off(mail, f"{type(exc).__name__}: {exc}")
                        continue
                    except BaseException:
                        rows.insert(0, mail)
                        raise
                    await self._settled(mail)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # The server is away or broke off: every mail not sent yet is retried.
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("mail not sent (%d to retry): %s", len(rows), error)
            for mail in rows:
                await self._put_off(mail, error)

    async def _settled(self, mail: AnyRow) -> None:
        if await self._executor.write_one(
            queries.mark_sent, mail.id, attempt=mail.attempts, now=_now()
        ):
            self._metrics.mails_sent.inc()
            logger.info("mail %s sent to %s", mail.message_id, mail.recipient)

    async def _put_off(self, mail: AnyRow, error: str) -> None:
        now = _now()
        retry_at = now + retry_delay(self._first_delay, mail.attempts, longest=self._max_delay)
        if retry_at - mail.created_at > self._give_up_after:
            if await self._executor.write_one(
                queries.mark_failed, mail.id, attempt=mail.attempts, now=now, error=error
            ):
                self._metrics.mails_failed.inc()
                logger.error("mail %s to %s given up: %s", mail.message_id, mail.recipient, error)
            return
        if await self._executor.write_one(
            queries.put_off, mail.id, attempt=mail.attempts, retry_at=retry_at, error=error
        ):
            self._metrics.mail_retries.inc()

    def _message(self, mail: AnyRow) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._mail_from
        message["To"] = mail.recipient
        message["Subject"] = mail.subject
        message["Date"] = format_datetime(mail.created_at)
        message["Message-ID"] = mail.message_id
        message.set_content(mail.body)
        return message
