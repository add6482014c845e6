"""Test 5: reads that may lag go to the replica, leave it when it lags or stops, come back
when it is back; a client that just wrote always reads its write, whichever host serves it."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.conftest import Stack
from tests.conftest import Figure
from tests.factories import Account, account

pytestmark = pytest.mark.slow

WITHIN = 30.0
MAX_LAG_SECONDS = 0.5  # BAZAAR_REPLICA_MAX_LAG_MS's default


def reads_by_role(stack: Stack) -> Counter[str]:
    """`bazaar_db_reads_total` by role, summed over every host (each sums its workers)."""
    total: Counter[str] = Counter()
    for host in stack.hosts:
        text = httpx.get(f"{host.url}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "bazaar_db_reads_total":
                    total[sample.labels["role"]] += int(sample.value)
    return total


async def _write_then_read(client: httpx.AsyncClient, owner: Account, name: str) -> int:
    """Create an item, then read it back at once: the read's status."""
    created = await client.post("/items/", json={"name": name, "price": 2.5}, headers=owner.headers)
    assert created.status_code == 201, created.text
    return (await client.get(f"/items/{created.json()['id']}")).status_code


async def _poll(what: str, check: object, *, within: float = WITHIN) -> float:
    """Await `check()` until true; the seconds it took."""
    assert callable(check)
    began = time.monotonic()
    while time.monotonic() - began < within:
        if await check():
            return time.monotonic() - began
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {within} s")


async def test_replica_reads_lag_and_failover(cluster_stack: Stack, figure: Figure) -> None:
    stack = cluster_stack
    statuses: list[int] = []
    async with stack.client("127.0.0.20") as writer, stack.client("127.0.0.21") as anonymous:
        owner = await account(writer)
        seed = await writer.post(
            "/items/", json={"name": "seed", "price": 1.0}, headers=owner.headers
        )
        seed_id = seed.json()["id"]

        async def browse() -> httpx.Response:
            response = await anonymous.get("/items/?limit=5&sort=-id")
            statuses.append(response.status_code)
            return response

        # 1. Normal lag: anonymous reads are the replica's.
        before = reads_by_role(stack)
        for _ in range(30):
            await browse()
        normal = reads_by_role(stack) - before
        ready = (await anonymous.get("/ready")).json()
        # And a writer reads its own write at once, 20 times over, whichever host serves.
        own_reads = [await _write_then_read(writer, owner, f"normal-{n}") for n in range(20)]

        # 2. Replay paused: writes go on, anonymous reads move to the primary once the
        # lag passes the limit; the writer reads its writes all along.
        await stack.fetch("SELECT pg_wal_replay_pause()", replica=True)
        paused_at = time.monotonic()
        fresh = await writer.post(
            "/items/", json={"name": "fresh", "price": 3.0}, headers=owner.headers
        )
        fresh_id = fresh.json()["id"]
        # Every worker dates the replica no later than its last check before this write's
        # commit, so by this time plus the limit, every worker finds it lagging.
        all_lagging_at = time.monotonic() + MAX_LAG_SECONDS
        own_while_paused = [await _write_then_read(writer, owner, f"paused-{n}") for n in range(10)]

        first_on_primary: list[float] = []

        async def anonymous_sees_fresh() -> bool:
            response = await anonymous.get(f"/items/{fresh_id}")
            statuses.append(response.status_code)
            if response.status_code == 200 and not first_on_primary:
                first_on_primary.append(time.monotonic())
            return response.status_code == 200 and time.monotonic() > all_lagging_at

        await _poll("anonymous reads on the primary", anonymous_sees_fresh)
        moved_after = first_on_primary[0] - paused_at
        lagging = (await anonymous.get("/ready")).json()
        before = reads_by_role(stack)
        for _ in range(30):
            await browse()
        while_paused = reads_by_role(stack) - before
        await stack.fetch("SELECT pg_wal_replay_resume()", replica=True)

        # 3. Replica stopped: reads go on from the primary, no 5xx; started: back to it.
        await asyncio.to_thread(stack.replica.stop, "fast")
        before = reads_by_role(stack)
        for _ in range(30):
            await browse()
        seed_reads = [(await anonymous.get(f"/items/{seed_id}")).status_code for _ in range(10)]
        while_stopped = reads_by_role(stack) - before
        # Each worker finds the replica gone at its next check (a connection refused, or one
        # that times out): until then it reports it lagging, never ok.
        stopped_states: list[str] = []

        async def ready_says_unreachable() -> bool:
            stopped_states.append((await anonymous.get("/ready")).json()["databases"]["replica"])
            return stopped_states[-1] == "unreachable"

        await _poll("/ready naming the replica unreachable", ready_says_unreachable)
        await asyncio.to_thread(stack.replica.start)

        async def replica_serves() -> bool:
            before = reads_by_role(stack)
            for _ in range(6):
                await browse()
            return (reads_by_role(stack) - before)["replica"] > 0

        returned = await _poll("reads back on the replica", replica_serves)

    figure("reads by role, normal lag (30 anonymous)", dict(normal))
    figure("a writer's reads of its write, normal lag", Counter(own_reads))
    figure("seconds from pausing replay to an anonymous read on the primary", moved_after)
    figure("a writer's reads of its write, replay paused", Counter(own_while_paused))
    figure("reads by role, replay paused (30 anonymous)", dict(while_paused))
    figure("reads by role, replica stopped (40 anonymous)", dict(while_stopped))
    figure("seconds from the replica's start to reads on it again", returned)
    figure("statuses of all anonymous reads", Counter(statuses))

    assert ready["databases"] == {"primary": "ok", "replica": "ok"}
    assert normal["replica"] >= 25, normal  # a host may have found it lagging for a moment
    assert own_reads == [200] * 20
    assert own_while_paused == [200] * 10
    assert lagging["databases"]["replica"] == "lagging"
    assert while_paused == Counter({"primary": 30})
    assert while_stopped == Counter({"primary": 40})
    assert seed_reads == [200] * 10
    assert set(stopped_states) <= {"lagging", "unreachable"}, stopped_states
    # Every anonymous read answered: the replica's 404 for an item it had not replayed yet
    # is the lag the anonymous reader may see; nothing else, and never a 5xx.
    assert set(statuses) <= {200, 404}
    assert all(s < 500 for s in statuses)
