"""The gate in front of the connection pool: first come, first served, bounded, re-entrant."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from bazaar.db import Gate


async def _until_waiting(gate_places: asyncio.Semaphore, count: int) -> None:
    """Yield to the loop until `count` callers wait at the gate."""
    for _ in range(1000):
        if len(gate_places._waiters or ()) == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"expected {count} waiting callers")


async def test_places_go_to_the_longest_waiting_caller_and_no_one_barges_in() -> None:
    gate = Gate(1, timeout=5)
    order: list[str] = []
    first_holds = asyncio.Event()
    release_first = asyncio.Event()

    async def caller(name: str, hold: asyncio.Event | None = None) -> None:
        async with gate.place():
            order.append(name)
            if hold is not None:
                first_holds.set()
                await hold.wait()

    first = asyncio.create_task(caller("first", release_first))
    await first_holds.wait()
    waiting = [asyncio.create_task(caller(name)) for name in ("a", "b", "c")]
    assert gate._places is not None
    await _until_waiting(gate._places, 3)

    # The place comes free while a newcomer is already on its way in.
    release_first.set()
    newcomer = asyncio.create_task(caller("newcomer"))
    await asyncio.gather(first, *waiting, newcomer)

    assert order == ["first", "a", "b", "c", "newcomer"]


async def test_a_caller_that_waits_too_long_gets_the_pools_timeout_error() -> None:
    gate = Gate(1, timeout=0.05)
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.place():
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    with pytest.raises(PoolTimeoutError):
        async with gate.place():
            pass
    release.set()
    await held

    # Both places were given back: the next caller gets one at once.
    async with asyncio.timeout(1), gate.place():
        pass


async def test_a_caller_holding_a_place_does_not_take_a_second_one() -> None:
    gate = Gate(1, timeout=0.05)
    async with gate.place(), gate.place():  # a read inside the request's session
        pass
    assert gate._places is not None
    assert not gate._places.locked()


async def test_a_cancelled_waiter_gives_up_its_turn_without_losing_a_place() -> None:
    gate = Gate(1, timeout=5)
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.place():
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)

    async def waiter() -> None:
        async with gate.place():
            pass

    cancelled = asyncio.create_task(waiter())
    assert gate._places is not None
    await _until_waiting(gate._places, 1)
    cancelled.cancel()
    release.set()
    await held
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert not gate._places.locked()


async def test_without_places_everyone_goes_through() -> None:
    gate = Gate(None, timeout=0.01)
    async with gate.place(), gate.place():
        pass
