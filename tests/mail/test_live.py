"""Mail from real `bazaar serve` processes: two workers never send one mail twice, and a
mail queued while the SMTP server is down arrives once it is back (production delays)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import run_sql
from tests.server import LiveServer, free_port, live_server
from tests.smtp import Inbox, smtp_server

pytestmark = pytest.mark.slow

PASSWORD = "quiet-lantern-1"
USERS = 10
ASKS_EACH = 3


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _outbox(server: LiveServer) -> list[tuple[str, int, bool]]:
    """(message id, attempts, sent) of every mail in the server's outbox."""
    query = "SELECT message_id, attempts, sent_at IS NOT NULL FROM outbox ORDER BY id"
    if server.database_path is not None:
        with closing(sqlite3.connect(server.database_path)) as db:
            return [(m, a, bool(s)) for m, a, s in db.execute(query)]
    connection = await asyncpg.connect(_dsn(server.env["BAZAAR_DATABASE_URL"]))
    try:
        return [(r[0], r[1], r[2]) for r in await connection.fetch(query)]
    finally:
        await connection.close()


async def _until_all_sent(server: LiveServer, count: int, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while True:
        rows = await _outbox(server)
        if len(rows) == count and all(sent for _, _, sent in rows):
            return
        assert time.monotonic() < deadline, f"outbox after {within} s: {rows}"
        await asyncio.sleep(0.1)


@pytest.fixture(params=["sqlite", "postgres"])
def database_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """What points `bazaar serve` at an empty database: its own SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        return {}
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(run_sql(_dsn(url), "TRUNCATE items, users, outbox RESTART IDENTITY CASCADE"))
    return {"BAZAAR_DATABASE_URL": url}


async def test_two_workers_and_a_burst_of_resets_send_each_mail_once(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    env = {
        "BAZAAR_MAIL_POLL_SECONDS": "0.1",
        "BAZAAR_LIMIT_MAIL_EMAIL": "1000/hour",
        "BAZAAR_LIMIT_MAIL_ADDRESS": "1000/hour",
        **database_env,
    }
    inbox = Inbox(free_port())
    env["BAZAAR_SMTP_URL"] = inbox.url
    with smtp_server(inbox), live_server(tmp_path, env=env, workers=2, measured=False) as server:
        async with server.client() as client:
            emails = [f"burst-{n}@example.com" for n in range(USERS)]
            for email in emails:
                body = {"name": "Burst", "email": email, "password": PASSWORD}
                assert (await client.post("/users/", json=body)).status_code == 201
            answers = await asyncio.gather(
                *(
                    client.post("/auth/forgot-password", json={"email": email})
                    for email in emails * ASKS_EACH
                )
            )
            assert [answer.status_code for answer in answers] == [202] * USERS * ASKS_EACH
        expected = USERS * (1 + ASKS_EACH)
        await inbox.wait_for(expected, within=60)
        await _until_all_sent(server, expected)
        rows = await _outbox(server)
        # Settled: nothing more can come. Give a stray duplicate the time to arrive anyway.
        await asyncio.sleep(1)
    mails = inbox.mails()
    ids = Counter(mail.message["Message-ID"] for mail in mails)
    assert len(mails) == expected
    assert set(ids.values()) == {1}
    assert set(ids) == {message_id for message_id, _, _ in rows}
    # Every row was claimed once: never by two workers, never again after it was sent.
    assert {attempts for _, attempts, _ in rows} == {1}
    per_recipient = Counter((mail.to, mail.subject) for mail in mails)
    assert per_recipient == {
        **{(email, "Verify your email for Bazaar"): 1 for email in emails},
        **{(email, "Reset your Bazaar password"): ASKS_EACH for email in emails},
    }


async def test_a_mail_queued_while_smtp_is_down_arrives_once_it_is_back(tmp_path: Path) -> None:
    """With the production retry delays: the figures show with `pytest -s`."""
    inbox = Inbox(free_port())
    env = {"BAZAAR_SMTP_URL": inbox.url}
    with live_server(tmp_path, env=env) as server:
        async with server.client() as client:
            body = {"name": "Patient", "email": "patient@example.com", "password": PASSWORD}
            assert (await client.post("/users/", json=body)).status_code == 201
            started = time.monotonic()
            response = await client.post(
                "/auth/forgot-password", json={"email": "patient@example.com"}
            )
            assert response.status_code == 202
        # Both mails (verification, reset) tried and put off while the server is down.
        deadline = time.monotonic() + 30
        while True:
            rows = await _outbox(server)
            if len(rows) == 2 and all(attempts >= 1 and not sent for _, attempts, sent in rows):
                break
            assert time.monotonic() < deadline, rows
            await asyncio.sleep(0.05)
        queued = time.monotonic() - started
        await asyncio.sleep(max(0.0, 2 - queued))
        with smtp_server(inbox):
            back = time.monotonic() - started
            await inbox.wait_for(2, within=60)
            delivered = time.monotonic() - started
            await _until_all_sent(server, 2)
            await asyncio.sleep(1)
        rows = await _outbox(server)
    print(
        f"\noutage (production delays): tried and put off by {queued:.2f} s, "
        f"server back at {back:.2f} s, delivered at {delivered:.2f} s; "
        f"attempts {[attempts for _, attempts, _ in rows]}"
    )
    assert sorted(mail.subject for mail in inbox.mails()) == [
        "Reset your Bazaar password",
        "Verify your email for Bazaar",
    ]
    assert [sent for _, _, sent in rows] == [True, True]
