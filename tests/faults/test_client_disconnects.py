"""A thousand clients that send a request and hang up before the answer: nothing may leak."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Figure
from tests.factories import account
from tests.faults.cluster import Cluster
from tests.faults.load import (
    IN_PROGRESS_GAUGE,
    POOL_GAUGE,
    gauge,
    logged_routes,
    logged_statuses,
    tracebacks,
)
from tests.server import live_server

CLIENTS = 1000
CONCURRENCY = 100


def http_request(
    method: str, path: str, *, token: str | None = None, body: bytes = b"", form: bool = False
) -> bytes:
    headers = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        headers.append(f"Authorization: Bearer {token}")
    if body:
        kind = "application/x-www-form-urlencoded" if form else "application/json"
        headers += [f"Content-Type: {kind}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


async def hang_up(port: int, request: bytes, how: str, rng: random.Random) -> None:
    """Send `request` (or part of it) and hang up without reading a byte of the answer."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if how == "half-body":
            writer.write(request[: len(request) - 5])
        else:
            writer.write(request)
        await writer.drain()
        if how in {"after-a-moment", "reset"}:
            await asyncio.sleep(rng.uniform(0, 0.03))
        if how == "reset":
            # SO_LINGER 0: the close sends a RST, as a client that crashed would.
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def settled_metrics(client: httpx.AsyncClient, within: float = 60) -> str:
    """/metrics once the server has finished every request but the scrape itself."""
    deadline = time.monotonic() + within
    while True:
        text = (await client.get("/metrics")).text
        if gauge(text, IN_PROGRESS_GAUGE) <= 1 or time.monotonic() > deadline:
            return text
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
async def test_clients_hanging_up_mid_request_leak_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, figure: Figure
) -> None:
    # The mail sender's idle poll is a transaction of its own: one caught between its read
    # and its commit would count as idle in transaction below. It polls once an hour here
    # (the sign-up's mail is sent at once, when the sign-up wakes it).
    env: dict[str, str] = {"BAZAAR_MAIL_POLL_SECONDS": "3600"}
    cluster: Cluster | None = None
    database = ""
    if backend == "postgres":
        cluster = request.getfixturevalue("cluster")
        database = request.getfixturevalue("pg_database")
        env["BAZAAR_DATABASE_URL"] = cluster.url(database)
    rng = random.Random(20261126)
    with live_server(tmp_path, env=env, measured=False) as server:
        port = urlsplit(server.url).port
        assert port is not None
        async with server.client(timeout=30) as client:
            owner = await account(client)
            items = []
            for n in range(3):
                response = await client.post(
                    "/items/", json={"name": f"shared {n}", "price": 5.0}, headers=owner.headers
                )
                items.append(response.json()["id"])

            def any_request() -> bytes:
                roll = rng.random()
                if roll < 0.30:
                    body = json.dumps({"name": f"hang-up {rng.random()}", "price": 3.5}).encode()
                    return http_request("POST", "/items/", token=owner.token, body=body)
                if roll < 0.45:
                    body = json.dumps({"name": f"renamed {rng.random()}"}).encode()
                    path = f"/items/{rng.choice(items)}"
                    return http_request("PATCH", path, token=owner.token, body=body)
                if roll < 0.65:
                    return http_request("GET", "/items/?limit=100&sort=-price")
                if roll < 0.80:
                    return http_request("GET", f"/items/{rng.choice(items)}")
                if roll < 0.92:
                    return http_request("GET", "/users/me", token=owner.token)
                if roll < 0.99:
                    return http_request("GET", "/ready")
                form = f"username={owner.email}&password={owner.password}".replace("@", "%40")
                return http_request("POST", "/auth/token", body=form.encode(), form=True)

            ways = ["at-once", "after-a-moment", "reset", "half-body"]
            slots = asyncio.Semaphore(CONCURRENCY)

            async def one_client() -> str:
                how = rng.choice(ways)
                async with slots:
                    await hang_up(port, any_request(), how, rng)
                return how

            started = time.monotonic()
            hung_up = Counter(await asyncio.gather(*(one_client() for _ in range(CLIENTS))))
            sent_in = time.monotonic() - started
            text = await settled_metrics(client)
            settled_in = time.monotonic() - started
            still_serving = await client.get(f"/items/{items[0]}")
        log = server.logs()
        if cluster is not None:
            rows = await cluster.fetch(
                database,
                "SELECT state, count(*) AS n FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid() GROUP BY state",
                database,
            )
            sessions = {row["state"]: row["n"] for row in rows}
        else:
            sessions = {}

    in_transaction = sum(n for state, n in sessions.items() if "in transaction" in (state or ""))
    statuses = logged_statuses(log)
    figure("clients that hung up", dict(hung_up))
    figure("seconds to send them all", sent_in)
    figure("seconds until the server had finished every request", settled_in)
    figure("statuses the server answered (to nobody)", dict(sorted(statuses.items())))
    figure("requests still in progress", gauge(text, IN_PROGRESS_GAUGE) - 1)
    figure("connections checked out of the pool", gauge(text, POOL_GAUGE))
    if cluster is not None:
        figure("database sessions by state", sessions)
        figure("sessions idle in transaction", in_transaction)

    assert gauge(text, IN_PROGRESS_GAUGE) == 1  # the scrape itself
    assert gauge(text, POOL_GAUGE) == 0
    assert in_transaction == 0
    assert sessions.get("active", 0) == 0
    assert still_serving.status_code == 200
    # /ready may say 503 when it waited over 2 s for a connection: a fair "too busy".
    assert not [status for status in statuses if status >= 500 and status != 503]
    assert logged_routes(log, 503).keys() <= {"/ready"}
    assert tracebacks(log) == []
