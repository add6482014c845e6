"""Whether the service can do its work: the database answers and its schema is current."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from bazaar import migrations
from bazaar.db.replica import Replica

logger = logging.getLogger(__name__)

SCHEMA_BEHIND = "The database schema is not at the newest migration (run `bazaar migrate`)"
DRAINING = "Shutting down: finishing the requests it has"


class Readiness:
    """Checks the database for `/ready`; probes that arrive while a check runs share it."""

    def __init__(
        self, engine: AsyncEngine, replica: Replica | None = None, *, timeout: float = 2.0
    ) -> None:
        self.engine = engine
        self.replica = replica
        self.draining = False
        self.timeout = timeout
        self._check: asyncio.Task[str | None] | None = None

    async def problem(self) -> str | None:
        """What keeps the service from being ready, or None when nothing does."""
        if self.draining:
            return DRAINING
        if self._check is None or self._check.done():
            self._check = asyncio.create_task(self._check_database())
        try:
            # Shielded: cancelling a connect or a query half-way can leave a pooled
            # connection in doubt, so a slow check goes on by itself and the probe
            # just stops waiting for it.
            return await asyncio.wait_for(asyncio.shield(self._check), self.timeout)
        except TimeoutError:
            return f"The database did not answer within {self.timeout:g} s"

    def databases(self) -> dict[str, str]:
        """The database roles and how each was last found, once the primary answered.

        The replica's state is the watcher's (no connection of its own here): whatever it
        is, the service is ready, since the primary serves the reads the replica cannot.
        """
        found = {"primary": "ok"}
        if self.replica is not None:
            found["replica"] = self.replica.state()
        return found

    async def close(self) -> None:
        """Stop a check still running (at shutdown, before the pool goes)."""
        if self._check is not None and not self._check.done():
            self._check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._check

    async def _check_database(self) -> str | None:
        try:
            async with self.engine.connect() as connection:
                behind = await connection.run_sync(migrations.pending)
        except Exception as exc:  # any failure to reach the database means "not ready"
            logger.warning("readiness: database unavailable: %s: %s", type(exc).__name__, exc)
            return f"The database is unavailable ({type(exc).__name__})"
        return SCHEMA_BEHIND if behind else None
