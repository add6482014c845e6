"""A burst of 200 sign-ups against `bazaar serve` on PostgreSQL: reads keep flowing meanwhile.

Hashing runs with no pooled connection held, at most one hash per spare core, and
a bounded wait that ends in a 503: the burst is served as fast as the CPU allows,
or told to come back, but never takes the connections that reads need. The read
latency during the burst is reported as a figure (`pytest -s` shows it), measured
by the reading client and, without the client's own delays, by the server's access
log; it is not asserted, since a busy machine would fail such a test for nothing.
What is asserted is what a user sees: every read answered, every sign-up created
or told when to come back, and nothing stored for those turned away.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from bazaar.config import Settings
from bazaar.db.engine import create_engine
from tests.conftest import SECRET
from tests.factories import account
from tests.server import LiveServer, live_server

SIGN_UPS = 200
READERS = 4

# The burst comes from a process of its own, so that the reading client's timings are not
# those of an event loop busy sending 200 requests.
BURST = textwrap.dedent(
    """
    import asyncio, collections, json, sys
    import httpx

    async def main(url, run, count):
        limits = httpx.Limits(max_connections=count, keepalive_expiry=1)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            async def sign_up(n):
                body = {"name": "Burst", "email": f"burst-{run}-{n}@example.com",
                        "password": "a-burst-of-lanterns"}
                response = await client.post("/users", json=body)
                if response.status_code == 503:
                    assert response.headers["retry-after"] == "1"
                return response.status_code
            statuses = await asyncio.gather(*(sign_up(n) for n in range(count)))
        print(json.dumps(collections.Counter(statuses)))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


@pytest.fixture
def server(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"BAZAAR_DATABASE_URL": postgres_url}
    with live_server(tmp_path_factory.mktemp("burst"), env=env, measured=False) as running:
        yield running


def _ms(values: list[float], fraction: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]:.0f} ms"


async def _stored(server: LiveServer, run: str) -> int:
    settings = Settings(database_url=server.env["BAZAAR_DATABASE_URL"], secret_key=SECRET)
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(
                text("SELECT count(*) FROM users WHERE email LIKE :pattern"),
                {"pattern": f"burst-{run}-%"},
            )
            return int(count or 0)
    finally:
        await engine.dispose()


async def test_reads_keep_flowing_through_a_burst_of_sign_ups(server: LiveServer) -> None:
    run = uuid.uuid4().hex[:8]
    async with server.client(timeout=60, connections=READERS) as client:
        seller = await account(client)
        item = await client.post(
            "/items", json={"name": "Lamp", "price": 1}, headers=seller.headers
        )
        path = item.headers["location"].removeprefix(server.url)
        log_before = len(server.logs())
        burst = await asyncio.create_subprocess_exec(
            sys.executable, "-c", BURST, server.url, run, str(SIGN_UPS),
            stdout=subprocess.PIPE,
        )  # fmt: skip
        latencies: list[float] = []
        reads: Counter[int] = Counter()

        async def reader() -> None:
            while burst.returncode is None:
                started = time.perf_counter()
                response = await client.get(path)
                latencies.append((time.perf_counter() - started) * 1000)
                reads[response.status_code] += 1

        started = time.perf_counter()
        readers = [asyncio.ensure_future(reader()) for _ in range(READERS)]
        output, _ = await burst.communicate()
        await asyncio.gather(*readers)
        seconds = time.perf_counter() - started
    assert burst.returncode == 0
    sign_ups = Counter({int(k): v for k, v in json.loads(output).items()})
    log = server.logs()[log_before:]
    served = [float(ms) for ms in re.findall(rf"GET {re.escape(path)} 200 ([\d.]+)ms", log)]
    print(
        f"\n{SIGN_UPS} sign-ups in {seconds:.1f} s: {dict(sign_ups)}; "
        f"GET {path} meanwhile: {len(latencies)} reads; as the client saw them p50 "
        f"{_ms(latencies, 0.5)}, p99 {_ms(latencies, 0.99)}; in the server p50 "
        f"{_ms(served, 0.5)}, p99 {_ms(served, 0.99)}"
    )
    assert set(sign_ups) <= {201, 503}, sign_ups
    assert sign_ups[201] > 0
    assert reads == {200: len(latencies)}
    assert await _stored(server, run) == sign_ups[201]
