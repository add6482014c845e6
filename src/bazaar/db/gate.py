"""The gate in front of the pool: requests take pooled connections in the order they asked."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from bazaar.config import Settings

_holding_a_place: ContextVar[bool] = ContextVar("holding_a_place", default=False)


def create_gate(settings: Settings) -> Gate:
    """The gate in front of the pool `create_engine` makes for `settings`."""
    places = None if settings.is_sqlite else settings.pool_size + settings.max_overflow
    return Gate(places, settings.pool_timeout_seconds)


class Gate:
    """Lets requests take pooled connections in the order they asked for them.

    SQLAlchemy's asyncio pool gives a returned connection to whichever caller
    asks next, and a waiting caller that loses that race queues again at the
    back: under load a few requests starve for seconds while the rest fly. Here
    requests queue first come, first served (asyncio's semaphore hands a freed
    place to the longest waiter), with one place per connection the pool can
    open, so no one waits in the pool itself. A request that holds a place
    already goes through without taking a second one. `places=None` lets
    everyone through (SQLite, where the write lock orders writers).
    """

    def __init__(self, places: int | None, timeout: float) -> None:
        self._places = None if places is None else asyncio.Semaphore(places)
        self._timeout = timeout

    def place(self) -> _Place:
        return _Place(self)

    async def _enter(self) -> asyncio.Semaphore | None:
        """Wait for a place; the semaphore to give it back to, or None when none was taken."""
        places = self._places
        if places is None or _holding_a_place.get():
            return None
        if not places.locked():
            await places.acquire()  # returns at once
        else:
            await self._wait(places)
        _holding_a_place.set(True)
        return places

    async def _wait(self, places: asyncio.Semaphore) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await places.acquire()
        except TimeoutError:
            raise PoolTimeoutError(
                f"no database connection came free within {self._timeout:g} s"
            ) from None


class _Place:
    """A place at the gate, held for an `async with` block."""

    __slots__ = ("_gate", "_taken")

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._taken: asyncio.Semaphore | None = None

    async def __aenter__(self) -> None:
        self._taken = await self._gate._enter()

    async def __aexit__(self, *_exc: object) -> None:
        if self._taken is not None:
            _holding_a_place.set(False)
            self._taken.release()
