"""Tests 3 and 4: a host killed with `kill -9` under load, and a rolling restart with SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.cluster.conftest import Stack
from tests.cluster.harness import CHECK_MS, FALL, wait_for
from tests.conftest import Figure
from tests.factories import account
from tests.faults.load import Load, tracebacks

pytestmark = pytest.mark.slow

# How long the load runs before and after each event: short, the machine is small.
SETTLE_SECONDS = 1.5


async def _lost(stack: Stack, load: Load) -> list[int]:
    """Acknowledged writes (201) whose row is not in the primary as acknowledged."""
    rows = await stack.fetch("SELECT id, name FROM items")
    present = {row["id"]: row["name"] for row in rows}
    return [i for i, name in load.acknowledged.items() if present.get(i) != name]


async def test_kill_9_of_a_host_under_load(cluster_stack: Stack, figure: Figure) -> None:
    stack = cluster_stack
    victim = stack.host("h2")
    survivors = [host for host in stack.hosts if host is not victim]
    logged_before = len(stack.haproxy.log_lines())
    # Requests a host failed, in HAProxy's counts: response errors and aborted transfers.
    errors = ("eresp", "srv_abrt")
    errors_before = stack.haproxy.counters(*errors)
    # A connection per request, so that HAProxy answers every request it had sent to the
    # victim (a 502 naming it): on a kept-alive connection it would close the client's
    # connection instead, unanswered and counted nowhere, as a server closing an idle
    # connection would, so that the client may try again.
    async with stack.client(keepalive=False) as client:
        owners = [await account(client), await account(client)]
        load = Load(client, owners)
        async with load.running(writers=3, readers=2):
            await asyncio.sleep(SETTLE_SECONDS)
            killed_wall, killed = time.time(), time.monotonic()
            victim.kill()
            await asyncio.to_thread(wait_for, "h2 gone", victim.refusing, within=10, every=0.005)
            dead = time.monotonic()  # every process of the host gone, its port closed

            def marked_down() -> bool:
                return stack.haproxy.states()[victim.name].startswith("DOWN")

            await asyncio.to_thread(wait_for, "h2 DOWN in HAProxy", marked_down, within=30)
            down_seconds = time.monotonic() - killed
            await asyncio.sleep(SETTLE_SECONDS)
            restarted_wall = time.time()
            victim.start()
            await asyncio.to_thread(victim.wait_serving)
            await asyncio.to_thread(wait_for, "h2 back UP", stack.all_up, within=30)
            rejoined = time.monotonic()
            await asyncio.sleep(SETTLE_SECONDS)
    lost = await _lost(stack, load)
    outcomes = load.outcomes
    failed = [o for o in outcomes if not o.ok]
    # In flight on the victim when it died: sent before, answered after, by HAProxy with a
    # 502 that names it.
    in_flight = [
        o
        for o in failed
        if o.started < dead and o.ended > killed and (o.status, o.served_by) == (502, "h2")
    ]
    logged = stack.haproxy.log_lines()[logged_before:]
    errors_after = stack.haproxy.counters(*errors)
    host_errors = {name: errors_after[name] - errors_before[name] for name in errors_before}
    # Requests HAProxy gave h2 once its health checks had had time to fail, until restarted.
    window = killed_wall + FALL * CHECK_MS / 1000 + 1.0
    sent_to_dead = [
        line for line in logged if line.host == "h2" and window < line.accepted < restarted_wall
    ]
    retried = [line for line in logged if killed_wall <= line.accepted and line.retries]
    after_rejoin = [o for o in outcomes if o.started > rejoined and o.served_by == "h2"]

    figure("requests", len(outcomes))
    figure("writes acknowledged", len(load.acknowledged))
    figure("acknowledged writes lost", len(lost))
    figure("failed requests", len(failed))
    figure("failed requests in flight when the host died", len(in_flight))
    figure("statuses of the failed requests", sorted({o.status for o in failed}))
    figure("requests failed by each host, in HAProxy's counts", host_errors)
    figure("seconds from kill -9 to the host's port refusing", dead - killed)
    figure("seconds from kill -9 to HAProxy marking it DOWN", down_seconds)
    figure("health-check window (fall x inter), seconds", FALL * CHECK_MS / 1000)
    figure("requests HAProxy redispatched after a refused connection", len(retried))
    figure("requests sent to the dead host after the window", len(sent_to_dead))
    figure("requests served by the restarted host after it rejoined", len(after_rejoin))

    assert load.acknowledged, "no write was acknowledged"
    assert lost == []
    assert failed == in_flight, [(o.kind, o.status, o.served_by, o.error) for o in failed]
    # ...and in HAProxy's own counts too (a request may count as both a response error and
    # an aborted transfer): the victim's errors cover these, the other hosts' are none.
    assert host_errors["h2"] >= len(failed), host_errors
    assert host_errors["h1"] == host_errors["h3"] == 0, host_errors
    assert sent_to_dead == []
    assert after_rejoin, "the restarted host served nothing"
    for host in survivors:
        assert tracebacks(host.logs()) == []


async def test_rolling_restart_fails_no_request(cluster_stack: Stack, figure: Figure) -> None:
    stack = cluster_stack
    restart_seconds = []
    async with stack.client() as client:
        owners = [await account(client), await account(client)]
        load = Load(client, owners)
        async with load.running(writers=3, readers=2):
            await asyncio.sleep(SETTLE_SECONDS)
            for host in stack.hosts:
                began = time.monotonic()
                host.signal(signal.SIGTERM)
                code = await asyncio.to_thread(host.wait_exit)
                assert code == 0, host.logs()[-3000:]
                host.start()
                await asyncio.to_thread(host.wait_serving)
                await asyncio.to_thread(wait_for, "every host UP", stack.all_up, within=30)
                restart_seconds.append(time.monotonic() - began)
                await asyncio.sleep(SETTLE_SECONDS)
    lost = await _lost(stack, load)
    failed = [o for o in load.outcomes if not o.ok]
    served = {o.served_by for o in load.outcomes}

    figure("requests", len(load.outcomes))
    figure("writes acknowledged", len(load.acknowledged))
    figure("failed requests", len(failed))
    figure("acknowledged writes lost", len(lost))
    figure("seconds per host (SIGTERM to back UP)", [round(s, 1) for s in restart_seconds])

    assert failed == [], [(o.kind, o.status, o.served_by, o.error) for o in failed]
    assert lost == []
    assert served == {"h1", "h2", "h3"}
    for host in stack.hosts:
        assert tracebacks(host.logs()) == []
