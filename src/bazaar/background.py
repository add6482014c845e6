"""Work a request starts and does not wait for, finished before the worker stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)

# What shutdown gives the tasks in flight: each is a few statements.
DRAIN_SECONDS = 10.0


class Background:
    """Tasks off the response path, kept (asyncio holds only weak references to tasks) and
    awaited at shutdown, so that one begun before SIGTERM still ends."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        # The task copies the request's context: its log lines carry the request's id.
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=error)

    async def drain(self) -> None:
        """Wait for the tasks in flight, up to `DRAIN_SECONDS`; cancel those left."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=DRAIN_SECONDS)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
