"""Ended sessions and expired refresh tokens do not pile up: each worker prunes them now
and then, and `bazaar prune` on demand.

Pruning is two idempotent DELETEs of rows no request can use any more: any number of
workers and hosts may run them at once (the second finds nothing left to delete).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from bazaar.auth import queries
from bazaar.db.executor import Executor

logger = logging.getLogger("bazaar.auth")


@dataclass(frozen=True)
class Pruned:
    sessions: int
    refresh_tokens: int


async def prune(executor: Executor) -> Pruned:
    """Delete ended sessions (with their tokens), then expired refresh tokens."""
    sessions = await executor.write_one(queries.prune_sessions)
    refresh_tokens = await executor.write_one(queries.prune_refresh_tokens)
    return Pruned(sessions, refresh_tokens)


async def prune_periodically(executor: Executor, interval: float) -> None:
    """Prune every `interval` seconds or so, until cancelled.

    Each wait is drawn between half and one and a half intervals, so that workers
    started together do not all prune at the same moment.
    """
    while True:
        await asyncio.sleep(interval * random.uniform(0.5, 1.5))  # noqa: S311 - not a secret
        try:
            pruned = await prune(executor)
        except Exception:
            # The database may be away: the next round tries again.
            logger.warning("pruning sessions failed", exc_info=True)
            continue
        if pruned.sessions or pruned.refresh_tokens:
            logger.info(
                "pruned %d ended sessions and %d expired refresh tokens",
                pruned.sessions,
                pruned.refresh_tokens,
            )
