"""Every pooled connection killed by `pg_terminate_backend` while clients write and read."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.conftest import Figure
from tests.factories import account
from tests.faults.cluster import Cluster
from tests.faults.load import Load, checked_out, logged_statuses, tracebacks
from tests.server import live_server


async def test_pool_recovers_from_terminated_connections(
    cluster: Cluster, pg_database: str, tmp_path: Path, figure: Figure
) -> None:
    env = {"BAZAAR_DATABASE_URL": cluster.url(pg_database)}
    writers, readers = 3, 2
    with live_server(tmp_path, env=env, measured=False) as server:
        async with server.client() as client:
            owners = [await account(client), await account(client)]
            load = Load(client, owners)
            async with load.running(writers=writers, readers=readers):
                await asyncio.sleep(1.5)
                killed_at = time.monotonic()
                killed = await cluster.terminate_backends(pg_database)
                await cluster.wait_gone(pg_database, killed)
                gone_at = time.monotonic()
                await asyncio.sleep(2)
            after = await client.get("/items/?limit=1")
            pool_after = await checked_out(client)
        log = server.logs()

    outcomes = load.outcomes
    failed = [o for o in outcomes if not o.ok]
    failed_after_gone = [o for o in failed if o.started >= gone_at]
    stuck = await cluster.backends(pg_database, ["idle in transaction", "active"])
    figure("sessions terminated", len(killed))
    figure("requests", len(outcomes))
    figure("requests started after the kill", sum(o.started >= killed_at for o in outcomes))
    figure("failed requests", len(failed))
    figure("failed requests started after the sessions were gone", len(failed_after_gone))
    figure("connections checked out afterwards", pool_after)
    figure("sessions active or idle in transaction afterwards", len(stuck))

    assert killed, "the server held no connection to kill"
    assert after.status_code == 200
    # Only a request that was using a connection as it was killed may fail, and with a 503.
    assert len(failed) <= writers + readers
    assert all(o.status == 503 and o.ended >= killed_at for o in failed)
    assert failed_after_gone == []
    assert pool_after == 0
    assert stuck == []
    assert logged_statuses(log).keys() <= {200, 201, 503}
    assert tracebacks(log) == []
