"""The cluster every test here shares, started once (its start is test 1's subject), put back
together after each test that broke a part of it, and torn down at the end of the run."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests.cluster.harness import (
    HOST_ADDRESSES,
    HAProxy,
    Host,
    Redis,
    free_port,
    host_env,
    wait_for,
)
from tests.faults.cluster import Cluster, find_bindir

# Client addresses of the tests: distinct, in 127.0.0.0/8, never a host's or the proxy's.
CLIENT_ADDRESS = "127.0.0.10"


@dataclass
class Stack:
    """The running parts, and how the hosts' first start went."""

    primary: Cluster
    replica: Cluster
    database: str
    redis: Redis
    hosts: list[Host]
    haproxy: HAProxy
    # From starting the three hosts at the same moment to all of them serving.
    start_seconds: float

    def client(
        self, address: str = CLIENT_ADDRESS, *, timeout: float = 20, keepalive: bool = True
    ) -> httpx.AsyncClient:
        """A client of HAProxy, connecting from `address` (a loopback address); without
        `keepalive`, a connection per request."""
        limits = httpx.Limits(
            max_connections=50,
            max_keepalive_connections=50 if keepalive else 0,
            keepalive_expiry=1.0,
        )
        transport = httpx.AsyncHTTPTransport(local_address=address, limits=limits)
        return httpx.AsyncClient(base_url=self.haproxy.url, transport=transport, timeout=timeout)

    def host(self, name: str) -> Host:
        return next(host for host in self.hosts if host.name == name)

    async def fetch(self, query: str, *args: Any, replica: bool = False) -> list[asyncpg.Record]:
        cluster = self.replica if replica else self.primary
        return await cluster.fetch(self.database, query, *args)

    def all_up(self) -> bool:
        return set(self.haproxy.states().values()) == {"UP"}

    def heal(self) -> None:
        """Put back whatever a test stopped: the replica (replaying), Redis, every host."""
        if not self.replica.running():
            self.replica.start()
        asyncio.run(self.replica.wait_accepting(self.database))
        paused = asyncio.run(self.fetch("SELECT pg_is_wal_replay_paused()", replica=True))
        if paused[0][0]:
            asyncio.run(self.fetch("SELECT pg_wal_replay_resume()", replica=True))
        if not self.redis.running():
            self.redis.start()
        for host in self.hosts:
            if not host.running():
                host.kill_orphans()
                host.start()
        for host in self.hosts:
            host.wait_serving()
        wait_for("every host UP in HAProxy", self.all_up, within=30)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


# Package scope: torn down as soon as the cluster tests are done, not at the end of the run.
@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    bindir = find_bindir()
    if bindir is None or not (bindir / "pg_basebackup").exists():
        _unavailable("PostgreSQL's initdb and pg_basebackup were not found")
    if shutil.which("haproxy") is None:
        _unavailable("haproxy is not installed (apt-get install haproxy)")
    if shutil.which("redis-server") is None and not os.path.exists("/usr/bin/redis-server"):
        _unavailable("redis-server is not installed")
    assert bindir is not None
    directory = tmp_path_factory.mktemp("cluster")
    primary, replica = Cluster(bindir), Cluster(bindir)
    redis = Redis(directory)
    hosts: list[Host] = []
    haproxy: HAProxy | None = None
    try:
        primary.init()
        primary.start()
        database = primary.create_database()
        replica.clone(primary)
        replica.start()
        redis.start()
        proxy_port = free_port()
        env = host_env(
            directory,
            {
                "BAZAAR_DATABASE_URL": primary.url(database),
                "BAZAAR_DATABASE_REPLICA_URL": replica.url(database),
                "BAZAAR_REDIS_URL": redis.url,
                "BAZAAR_TRUSTED_PROXIES": "127.0.0.1/32",
                "BAZAAR_PUBLIC_URL": f"http://127.0.0.1:{proxy_port}",
                "BAZAAR_LIMIT_LOGIN_PAIR": "3/15 minutes",
                "BAZAAR_LIMIT_LOGIN_ADDRESS": "6/15 minutes",
            },
        )
        hosts = [
            Host(f"h{n}", address, free_port(address), directory, env)
            for n, address in enumerate(HOST_ADDRESSES, start=1)
        ]
        haproxy = HAProxy(directory, hosts, port=proxy_port)
        haproxy.start()
        started = time.monotonic()
        for host in hosts:  # at the same moment, on an empty database
            host.start()
        for host in hosts:
            host.wait_serving()
        start_seconds = time.monotonic() - started
        instance = Stack(primary, replica, database, redis, hosts, haproxy, start_seconds)
        wait_for("every host UP in HAProxy", instance.all_up, within=30)
        yield instance
    finally:
        for host in hosts:
            host.stop()
        if haproxy is not None:
            haproxy.stop()
        redis.stop()
        replica.destroy()
        primary.destroy()


@pytest.fixture
def cluster_stack(stack: Stack) -> Iterator[Stack]:
    """The shared cluster, whole again after the test, whatever it broke."""
    yield stack
    stack.heal()
