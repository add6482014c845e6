"""PostgreSQL restarts (fast and immediate) while clients write and read through a real server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.conftest import Figure
from tests.factories import account
from tests.faults.cluster import Cluster, ShutdownMode
from tests.faults.load import (
    DATABASE_KINDS,
    Load,
    checked_out,
    logged_statuses,
    tracebacks,
)
from tests.server import live_server

RECOVERY_TARGET_SECONDS = 5.0


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_under_load(
    mode: ShutdownMode, cluster: Cluster, pg_database: str, tmp_path: Path, figure: Figure
) -> None:
    env = {"BAZAAR_DATABASE_URL": cluster.url(pg_database)}
    with live_server(tmp_path, env=env, measured=False) as server:
        async with server.client() as client:
            owners = [await account(client), await account(client)]
            load = Load(client, owners)
            async with load.running(writers=3, readers=2, ready=True):
                await asyncio.sleep(1.5)
                await asyncio.to_thread(cluster.stop, mode)
                down = time.monotonic()
                await asyncio.sleep(2)
                restarting = time.monotonic()
                await asyncio.to_thread(cluster.start, wait=False)
                up = await cluster.wait_accepting(pg_database)
                await asyncio.sleep(2.5)
            final_ready = await client.get("/ready")
            pool_after = await checked_out(client)
        still_running = server.process.poll() is None
        log = server.logs()

    outcomes = load.outcomes
    served = [o for o in outcomes if o.kind in DATABASE_KINDS]
    during = [o for o in outcomes if o.started >= down and o.ended <= restarting]
    recovered = [o for o in served if o.ok and o.ended > up]
    assert recovered, "no request succeeded after PostgreSQL came back"
    recovery = min(o.ended for o in recovered) - up
    failures_after_recovery = [
        o for o in outcomes if o.started > up + recovery and not o.ok and o.kind != "ready"
    ]
    acknowledged = load.acknowledged
    rows = await cluster.fetch(pg_database, "SELECT id, name FROM items")
    present = {row["id"]: row["name"] for row in rows}
    lost = [i for i, name in acknowledged.items() if present.get(i) != name]
    # A commit whose answer was lost with the connection: the client saw a 503, yet it stands.
    refused = {o.name for o in outcomes if o.kind == "create" and o.status == 503}
    committed_anyway = refused & set(present.values())
    duplicates = await cluster.fetch(
        pg_database, "SELECT name, count(*) FROM items GROUP BY name HAVING count(*) > 1"
    )
    statuses = sorted({o.status for o in outcomes})
    stuck = await cluster.backends(pg_database, ["idle in transaction", "active"])

    figure("requests", len(outcomes))
    figure("statuses seen", statuses)
    figure("writes acknowledged", len(acknowledged))
    figure("acknowledged writes lost", len(lost))
    figure("duplicate rows", len(duplicates))
    figure("creates answered 503 that committed anyway", len(committed_anyway))
    figure("outage requests answered 503", sum(o.status == 503 for o in during))
    figure("seconds from PostgreSQL up to first 2xx", recovery)
    figure("failures after recovery", len(failures_after_recovery))
    figure("connections checked out afterwards", pool_after)
    figure("sessions active or idle in transaction afterwards", len(stuck))

    assert still_running, "bazaar serve exited"
    assert log.count("Started server process") == 1, "bazaar serve restarted"
    assert lost == []
    assert duplicates == []
    # Every answer is a success or a 503 that says why: no 500, no dropped connection.
    unexpected = [o for o in outcomes if not o.ok and o.status != 503]
    assert unexpected == []
    assert all(
        (o.detail or "").startswith("The database is unavailable") for o in outcomes if not o.ok
    )
    assert logged_statuses(log).keys() <= {200, 201, 503}
    assert tracebacks(log) == []
    # While it was away: the database's requests and /ready say 503; after, /ready is 200.
    assert [o for o in during if o.kind in DATABASE_KINDS and o.status == 503]
    assert all(o.status == 503 for o in during if o.kind in DATABASE_KINDS | {"ready"})
    assert [o for o in during if o.kind == "ready"]
    assert final_ready.status_code == 200, final_ready.text
    assert all(o.status == 200 for o in outcomes if o.kind == "ready" and o.started > up + 1)
    assert recovery < RECOVERY_TARGET_SECONDS
    assert failures_after_recovery == []
    assert pool_after == 0
    assert stuck == []
