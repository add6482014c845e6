"""Rows nothing can use any more do not pile up: each worker prunes them now and then, and
`bazaar prune` on demand.

What goes: ended sessions (revoked or past their absolute expiry, with their refresh
tokens), refresh tokens past their expiry, mailed links past theirs (used or not), and
mail sent more than `KEEP_SENT_MAIL` ago or given up on more than `KEEP_FAILED_MAIL` ago
(kept that long for operators to read, and retry).

Each is one idempotent DELETE of rows no request can use: any number of workers and
hosts may run them at once (the second finds nothing left to delete).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import astuple, dataclass
from datetime import timedelta

from bazaar.accounts import queries as links
from bazaar.auth import queries as sessions
from bazaar.db.executor import Executor
from bazaar.mail import queries as mail

logger = logging.getLogger("bazaar.pruning")

KEEP_SENT_MAIL = timedelta(days=7)
KEEP_FAILED_MAIL = timedelta(days=30)
# Its own generator: the shared one is the tests' (Hypothesis checks nobody else draws).
_random = random.SystemRandom()


@dataclass(frozen=True)
class Pruned:
    sessions: int
    refresh_tokens: int
    links: int
    mails: int

    def __str__(self) -> str:
        return (
            f"{self.sessions} ended sessions, {self.refresh_tokens} expired refresh tokens, "
            f"{self.links} expired links and {self.mails} old mails"
        )


async def prune(executor: Executor) -> Pruned:
    """Delete what nobody can use any more; how many of each."""
    return Pruned(
        sessions=await executor.write_one(sessions.prune_sessions),
        refresh_tokens=await executor.write_one(sessions.prune_refresh_tokens),
        links=await executor.write_one(links.prune_links),
        mails=await executor.write_one(
            mail.prune_mail, keep_sent=KEEP_SENT_MAIL, keep_failed=KEEP_FAILED_MAIL
        ),
    )


async def prune_periodically(executor: Executor, interval: float) -> None:
    """Prune every `interval` seconds or so, until cancelled.

    Each wait is drawn between half and one and a half intervals, so that workers
    started together do not all prune at the same moment.
    """
    while True:
        await asyncio.sleep(interval * _random.uniform(0.5, 1.5))
        try:
            pruned = await prune(executor)
        except Exception:
            # The database may be away: the next round tries again.
            logger.warning("pruning failed", exc_info=True)
            continue
        if any(astuple(pruned)):
            logger.info("pruned %s", pruned)
