"""The outbox: claimed by one sender at a time, sent at least once, retried, given up on."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from bazaar.config import Settings
from bazaar.db.engine import create_engine
from bazaar.db.executor import Executor
from bazaar.db.gate import create_gate
from bazaar.mail import queries
from bazaar.mail.models import OutboxMail
from bazaar.mail.sender import MailSender, SMTPTransport, retry_delay
from bazaar.ops.metrics import Metrics
from bazaar.services import Services
from tests.factories import Api
from tests.ops.promtext import value
from tests.server import free_port
from tests.smtp import Inbox, smtp_server


async def _queue(api: Api, count: int, *, created: datetime | None = None) -> None:
    rows = [
        {
            "recipient": f"r{n}@example.com",
            "subject": f"Mail {n}",
            "body": f"Body {n}",
            "message_id": f"<m{n}@test>",
            "attempts": 0,
            "next_attempt_at": datetime.now(UTC) - timedelta(seconds=1),
            **({"created_at": created} if created else {}),
        }
        for n in range(count)
    ]
    async with api.app.state.services.engine.begin() as connection:
        await connection.execute(insert(OutboxMail), rows)


async def _rows(api: Api) -> list[OutboxMail]:
    async with api.app.state.services.sessionmakers[False]() as session:
        return list((await session.scalars(select(OutboxMail).order_by(OutboxMail.id))).all())


def _services(api: Api) -> Services:
    services: Services = api.app.state.services
    return services


async def _until(condition: object, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def test_two_senders_claiming_at_once_never_take_one_row(
    api: Api, settings: Settings
) -> None:
    await _services(api).mail.stop()  # this test's two claimants only
    await _queue(api, 3 * queries.BATCH)
    engines = [create_engine(settings, autocommit=True) for _ in range(2)]
    try:
        executors = [Executor(engine, create_gate(settings)) for engine in engines]
        now = datetime.now(UTC)
        for _ in range(5):
            claims = await asyncio.gather(
                *(
                    executor.write_one(
                        queries.claim_due, now=now, lease_end=now + timedelta(minutes=10)
                    )
                    for executor in executors
                )
            )
            first, second = ({row.id for row in claim} for claim in claims)
            assert not first & second
        rows = await _rows(api)
        # Every row claimed once, none twice, however the claims interleaved.
        assert sorted(row.attempts for row in rows) == [1] * len(rows)
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_sender_that_dies_mid_send_leaves_the_mail_to_another(
    api: Api, inbox: Inbox
) -> None:
    services = _services(api)
    await services.mail.stop()
    await _queue(api, 1)
    # The first sender claims the mail, then dies before it could send it.
    now = datetime.now(UTC)
    lease = timedelta(seconds=0.5)
    (claimed,) = await services.executor.write_one(
        queries.claim_due, now=now, lease_end=now + lease
    )
    assert claimed.attempts == 1

    sender = MailSender(
        services.executor,
        SMTPTransport(inbox.url),
        services.metrics,
        mail_from=services.settings.mail_from,
        lease=lease,
    )
    # While the lease holds, another sender leaves the mail alone.
    assert await sender.run_once() > 0
    assert inbox.mails() == []

    async def sent() -> bool:
        await sender.run_once()
        return bool(inbox.mails())

    await _until(sent)
    (row,) = await _rows(api)
    assert row.sent_at is not None
    assert row.attempts == 2
    # Sent once: nothing more is due.
    assert await sender.run_once() > 0
    await asyncio.sleep(0.1)
    assert len(inbox.mails()) == 1
    assert inbox.mails()[0].message["Message-ID"] == "<m0@test>"


async def test_a_mail_queued_while_the_server_is_down_arrives_once_it_is_back(
    api: Api, settings: Settings
) -> None:
    port = free_port()
    services = _services(api)
    await services.mail.stop()
    sender = MailSender(
        services.executor,
        SMTPTransport(f"smtp://127.0.0.1:{port}"),
        services.metrics,
        mail_from=settings.mail_from,
        poll_seconds=0.1,
        retry_seconds=0.5,
    )
    api.use(mail=sender)
    sender.start()
    try:
        started = time.monotonic()
        account = await api.user()  # its verification mail is queued now
        queued = time.monotonic() - started

        async def tried() -> bool:
            rows = await _rows(api)
            return bool(rows and rows[0].last_error)

        await _until(tried)
        (row,) = await _rows(api)
        assert row.sent_at is None
        assert "Connect" in (row.last_error or "") or "refused" in (row.last_error or "")

        inbox = Inbox(port)
        with smtp_server(inbox):
            back = time.monotonic() - started
            (mail,) = await inbox.wait_for(1, to=account.email)
            delivered = time.monotonic() - started

            async def settled() -> bool:
                return (await _rows(api))[0].sent_at is not None

            # Marked sent once the server has taken it.
            await _until(settled)
            (row,) = await _rows(api)
            assert row.last_error is None
            assert row.attempts >= 2
            # Once: the sender has nothing left to send.
            assert await sender.run_once() > 0
            assert len(inbox.mails()) == 1
        print(
            f"\noutage: queued at {queued:.2f} s, server back at {back:.2f} s, "
            f"delivered at {delivered:.2f} s after {row.attempts} attempts"
        )
        assert mail.subject == "Verify your email for Bazaar"
        assert value(services.metrics.exposition().decode(), "bazaar_mail_retries_total")
    finally:
        await sender.stop()


def test_retries_wait_twice_as_long_each_time_up_to_an_hour() -> None:
    first = timedelta(seconds=5)
    delays = [retry_delay(first, attempt).total_seconds() for attempt in range(1, 14)]
    assert delays[:5] == [5, 10, 20, 40, 80]
    assert delays[-2:] == [3600, 3600]
    # A day of them: enough tries to ride out an outage of many hours.
    elapsed, tries = 0.0, 0
    while elapsed < 86400:
        tries += 1
        elapsed += retry_delay(first, tries).total_seconds()
    assert 25 < tries < 40


async def test_a_mail_undeliverable_for_a_day_is_marked_failed(api: Api) -> None:
    services = _services(api)
    await services.mail.stop()
    await _queue(api, 1, created=datetime.now(UTC) - timedelta(days=1, seconds=-1))
    metrics = Metrics()
    sender = MailSender(
        services.executor,
        SMTPTransport(f"smtp://127.0.0.1:{free_port()}"),
        metrics,
        mail_from=services.settings.mail_from,
        retry_seconds=5,
    )
    await sender.run_once()  # refused: its retry would come after the day is out
    (row,) = await _rows(api)
    assert row.failed_at is not None
    assert row.sent_at is None
    assert row.last_error
    assert await sender.run_once() > 0  # nothing left to try
    text = metrics.exposition().decode()
    assert value(text, "bazaar_mails_failed_total") == 1
    assert value(text, "bazaar_mails_pending") == 0


async def test_credentials_never_go_to_a_server_without_tls(api: Api, inbox: Inbox) -> None:
    services = _services(api)
    await services.mail.stop()
    await _queue(api, 1)
    sender = MailSender(
        services.executor,
        SMTPTransport(f"smtp://someone:secret@127.0.0.1:{inbox.port}"),
        services.metrics,
        mail_from=services.settings.mail_from,
    )
    await sender.run_once()
    (mail,) = await inbox.wait_for(1)
    assert mail.authenticated is False


@pytest.mark.parametrize("settings_overrides", [{"smtp_url": ""}])
async def test_without_smtp_url_each_mail_and_its_link_goes_to_the_log(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bazaar.mail.sender")
    account = await api.user()

    async def logged() -> bool:
        return any("verify-email?token=" in record.getMessage() for record in caplog.records)

    await _until(logged)
    (line,) = [r.getMessage() for r in caplog.records if "verify-email?token=" in r.getMessage()]
    assert f"to {account.email}" in line
    assert "http://test/account/verify-email?token=" in line

    async def settled() -> bool:
        return (await _rows(api))[0].sent_at is not None

    await _until(settled)
    text = _services(api).metrics.exposition().decode()
    assert value(text, "bazaar_mails_sent_total") == 1
