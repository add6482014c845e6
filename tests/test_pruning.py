"""Pruning deletes exactly what nobody can use any more, and a second pruner finds nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from bazaar.accounts.models import OneTimeToken
from bazaar.mail.models import OutboxMail
from bazaar.pruning import prune
from tests.factories import Api


async def test_expired_links_and_old_mail_are_pruned(api: Api) -> None:
    user = await api.user()
    await api.sql("DELETE FROM one_time_tokens")
    await api.sql("DELETE FROM outbox")
    now = datetime.now(UTC)
    day = timedelta(days=1)
    links = [
        ("live", now + day, None),
        ("used, live", now + day, now),
        ("expired", now - day, None),
        ("used, expired", now - day, now - 2 * day),
    ]
    mails = [
        ("pending", None, None),
        ("sent yesterday", now - day, None),
        ("sent 8 days ago", now - 8 * day, None),
        ("failed 2 days ago", None, now - 2 * day),
        ("failed 31 days ago", None, now - 31 * day),
    ]
    async with api.app.state.services.engine.begin() as connection:
        await connection.execute(
            insert(OneTimeToken),
            [
                {
                    "token_hash": name.encode().ljust(32, b"."),
                    "purpose": "reset",
                    "user_id": user.id,
                    "email": user.email,
                    "expires_at": expires,
                    "used_at": used,
                }
                for name, expires, used in links
            ],
        )
        await connection.execute(
            insert(OutboxMail),
            [
                {
                    "recipient": "a@example.com",
                    "subject": subject,
                    "body": "-",
                    "message_id": f"<{n}@test>",
                    "sent_at": sent,
                    "failed_at": failed,
                }
                for n, (subject, sent, failed) in enumerate(mails)
            ],
        )
    executor = api.app.state.services.executor
    pruned = await prune(executor)
    assert (pruned.links, pruned.mails) == (2, 2)
    async with api.app.state.services.engine.connect() as connection:
        kept_links = (await connection.execute(OneTimeToken.__table__.select())).all()
        kept_mails = (await connection.execute(OutboxMail.__table__.select())).all()
    assert {row.token_hash.rstrip(b".").decode() for row in kept_links} == {"live", "used, live"}
    assert {row.subject for row in kept_mails} == {
        "pending",
        "sent yesterday",
        "failed 2 days ago",
    }
    again = await asyncio.gather(prune(executor), prune(executor))
    assert [(p.links, p.mails) for p in again] == [(0, 0), (0, 0)]
