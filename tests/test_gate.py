"""The gate in front of the connection pool: first come, first served, bounded, re-entrant."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from bazaar.config import Settings
from bazaar.db.gate import Gate, create_gate
from tests.conftest import SECRET


async def _until_waiting(gate_places: asyncio.Semaphore, count: int) -> None:
    """Yield to the loop until `count` callers wait at the gate."""
    for _ in range(1000):
        if len(gate_places._waiters or ()) == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"expected {count} waiting callers")


async def _hold(gate: Gate, count: int = 1) -> tuple[list[asyncio.Task[None]], asyncio.Event]:
    """`count` callers, each in a task of its own, that hold a place until the event is set."""
    release = asyncio.Event()
    inside = 0

    async def holder() -> None:
        nonlocal inside
        async with gate.place():
            inside += 1
            await release.wait()

    held = [asyncio.create_task(holder()) for _ in range(count)]
    for _ in range(1000):
        if inside == count:
            return held, release
        await asyncio.sleep(0)
    raise AssertionError(f"{inside} of {count} callers got a place")


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
    held, release = await _hold(gate)
    with pytest.raises(PoolTimeoutError):
        async with gate.place():
            pass
    release.set()
    await asyncio.gather(*held)

    # The place was given back: the next caller gets it at once.
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
    held, release = await _hold(gate)

    async def waiter() -> None:
        async with gate.place():
            pass

    cancelled = asyncio.create_task(waiter())
    assert gate._places is not None
    await _until_waiting(gate._places, 1)
    cancelled.cancel()
    release.set()
    await asyncio.gather(*held)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert not gate._places.locked()


async def test_without_places_everyone_goes_through() -> None:
    held, release = await _hold(Gate(None, timeout=0.01), count=50)
    release.set()
    await asyncio.gather(*held)


@pytest.mark.parametrize(("pool_size", "max_overflow"), [(3, 0), (2, 2)])
async def test_the_apps_gate_has_a_place_per_connection_the_pool_can_open(
    pool_size: int, max_overflow: int
) -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1/unused",
        secret_key=SECRET,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout_seconds=0.05,
    )
    gate = create_gate(settings)
    held, release = await _hold(gate, count=pool_size + max_overflow)
    with pytest.raises(PoolTimeoutError):
        async with gate.place():
            pass
    release.set()
    await asyncio.gather(*held)


async def test_on_sqlite_the_apps_gate_lets_everyone_through() -> None:
    settings = Settings(database_url="sqlite+aiosqlite:///unused.db", secret_key=SECRET)
    held, release = await _hold(create_gate(settings), count=50)
    release.set()
    await asyncio.gather(*held)
