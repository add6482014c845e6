"""`kill -9` of the server under load, then a restart on the same database: nothing half-done."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Figure
from tests.factories import account
from tests.faults.cluster import Cluster
from tests.faults.load import Load, tracebacks
from tests.server import live_server

# Rows that only a half-applied write could leave behind.
PARTIAL_ROWS = {
    "items without an owner": (
        "SELECT count(*) FROM items LEFT JOIN users ON users.id = items.owner_id "
        "WHERE users.id IS NULL"
    ),
    "items with a NULL": (
        "SELECT count(*) FROM items WHERE name IS NULL OR price IS NULL OR owner_id IS NULL "
        "OR created_at IS NULL OR version IS NULL"
    ),
    "users with a NULL": (
        "SELECT count(*) FROM users WHERE name IS NULL OR email IS NULL "
        "OR hashed_password IS NULL OR is_active IS NULL OR is_admin IS NULL "
        "OR created_at IS NULL"
    ),
}


async def _query(
    backend: str, database: str, cluster: Cluster | None, sql: str
) -> Sequence[Sequence[Any]]:
    if backend == "sqlite":
        with sqlite3.connect(database) as connection:
            return connection.execute(sql).fetchall()
    assert cluster is not None
    return [tuple(row) for row in await cluster.fetch(database, sql)]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_kill_9_under_load_loses_no_acknowledged_write(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, figure: Figure
) -> None:
    cluster: Cluster | None = None
    env: dict[str, str] = {}
    database = str(tmp_path / "bazaar.db")
    if backend == "postgres":
        cluster = request.getfixturevalue("cluster")
        database = request.getfixturevalue("pg_database")
        env["BAZAAR_DATABASE_URL"] = cluster.url(database)

    with live_server(tmp_path, env=env, measured=False) as server:
        async with server.client(timeout=10) as client:
            owners = [await account(client), await account(client)]
            load = Load(client, owners)
            async with load.running(writers=4, readers=1, churn=True):
                await asyncio.sleep(2)
                os.kill(server.process.pid, signal.SIGKILL)
                killed_at = time.monotonic()
                await asyncio.to_thread(server.process.wait)
                await asyncio.sleep(0.2)
        assert server.process.returncode == -signal.SIGKILL

    with live_server(tmp_path, env=env, measured=False) as again:
        async with again.client(timeout=10) as client:
            ready = await client.get("/ready")
            # A write after the restart works, for an owner made before the kill.
            after = await client.post(
                "/items/",
                json={"name": "after the restart", "price": 1.0},
                headers=owners[0].headers,
            )
            sample = list(load.acknowledged)[-20:]
            read_back = [(await client.get(f"/items/{i}")).status_code for i in sample]
        log = again.logs()

    acknowledged = load.acknowledged
    rows = await _query(backend, database, cluster, "SELECT id, name FROM items")
    present: dict[int, str] = {row[0]: row[1] for row in rows}
    lost = [i for i, name in acknowledged.items() if present.get(i) != name]
    partial = {
        what: (await _query(backend, database, cluster, sql))[0][0]
        for what, sql in PARTIAL_ROWS.items()
    }
    deleted = [o.name for o in load.outcomes if o.kind == "delete-user" and o.status == 204]
    users = {
        email for (email,) in await _query(backend, database, cluster, "SELECT email FROM users")
    }
    deleted_but_present = [email for email in deleted if email in users]
    in_flight = [o for o in load.outcomes if o.started < killed_at and o.status == 0]

    figure("writes acknowledged before the kill", len(acknowledged))
    figure("requests cut off by the kill", len(in_flight))
    figure("acknowledged writes lost", len(lost))
    figure("users deleted (204) before the kill", len(deleted))
    for what, count in partial.items():
        figure(what, count)

    assert acknowledged, "no write was acknowledged before the kill"
    assert lost == []
    assert partial == dict.fromkeys(PARTIAL_ROWS, 0)
    assert deleted_but_present == []
    if backend == "sqlite":
        assert (await _query(backend, database, None, "PRAGMA integrity_check")) == [("ok",)]
        assert list(await _query(backend, database, None, "PRAGMA foreign_key_check")) == []
    assert ready.status_code == 200, ready.text
    assert after.status_code == 201, after.text
    assert read_back == [200] * len(sample)
    assert tracebacks(log) == []
