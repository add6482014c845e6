"""Throttles that hold: counted before the attempt, per pair, address and email, by true address."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bazaar.addresses import client_address
from bazaar.app import create_app
from bazaar.config import Settings
from bazaar.errors import TooManyRequests
from bazaar.throttle import Throttle
from tests.conftest import FAST_PASSWORDS
from tests.factories import Api
from tests.server import LiveServer, free_port, live_server

PASSWORD = "quiet-lantern-1"
REDIS_URL = "redis://127.0.0.1:6379/0"
# The test client's own address (httpx's ASGI transport), trusted as a proxy in the tests
# that speak for several clients through X-Forwarded-For.
PROXY = "127.0.0.1"


def from_(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def a_fresh_address() -> str:
    """An address of the documentation range no other test run has used (Redis outlives runs)."""
    return str(ip_network("2001:db8::/32")[uuid.uuid4().int % 2**96])


async def login(api: Api, email: str, password: str, address: str | None = None) -> int:
    headers = from_(address) if address else {}
    response = await api.client.post(
        "/auth/token", data={"username": email, "password": password}, headers=headers
    )
    if response.status_code == 429:
        assert 0 < int(response.headers["retry-after"]) <= 15 * 60
    return response.status_code


class TestClientAddress:
    trusted = (ip_network("10.0.0.0/8"), ip_network("2001:db8:1::/48"))

    @pytest.mark.parametrize(
        ("peer", "forwarded", "expected"),
        [
            # An untrusted peer is the client, whatever it claims.
            ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),
            ("127.0.0.1", ["198.51.100.1"], "127.0.0.1"),
            # A trusted proxy: the right-most hop it did not add itself.
            ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
            ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
            ("10.0.0.2", ["6.6.6.6, 198.51.100.1, 10.0.0.9"], "198.51.100.1"),
            ("10.0.0.2", ["6.6.6.6", "198.51.100.1, 10.1.2.3"], "198.51.100.1"),
            ("2001:db8:1::5", ["2001:db8:2::7"], "2001:db8:2::7"),
            # Only proxies on the way: the first of them called.
            ("10.0.0.2", ["10.0.0.7, 10.0.0.9"], "10.0.0.7"),
            # No header, or one that is not a chain of addresses: the proxy answers for it.
            ("10.0.0.2", [], "10.0.0.2"),
            ("10.0.0.2", ["198.51.100.1, not-an-address"], "10.0.0.2"),
            ("10.0.0.2", [""], "10.0.0.2"),
            ("testclient", ["198.51.100.1"], "testclient"),
        ],
    )
    def test_the_rule(self, peer: str, forwarded: list[str], expected: str) -> None:
        assert client_address(peer, forwarded, self.trusted) == expected


class TestWithoutTrustedProxies:
    """Nothing a client says about its address is believed: X-Forwarded-For is ignored."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"limit_login_pair": "1000/minute"}

    async def test_a_new_forwarded_for_gets_no_new_budget(self, api: Api) -> None:
        statuses = [
            await login(api, f"spray{n}@example.com", "guess-guess", a_fresh_address())
            for n in range(21)
        ]
        assert statuses == [401] * 20 + [429]

    async def test_sign_ups_are_throttled_per_address(
        self, api: Api, settings: Settings, app: FastAPI
    ) -> None:
        api.use(
            throttle=Throttle(settings.model_copy(update={"limit_signup": "3/hour"})),
        )

        async def sign_up(n: int) -> httpx.Response:
            body = {"name": "N", "email": f"n{n}@example.com", "password": PASSWORD}
            return await api.client.post("/users/", json=body, headers=from_(f"198.51.100.{n}"))

        responses = [await sign_up(n) for n in range(4)]
        assert [r.status_code for r in responses] == [201, 201, 201, 429]
        assert 3000 < int(responses[-1].headers["retry-after"]) <= 3600
        assert await api.count("users") == 3


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"trusted_proxies": [ip_network(PROXY)]}


async def test_a_stranger_cannot_lock_the_owner_out(api: Api) -> None:
    await api.sign_up(email="owner@example.com", password=PASSWORD)
    stranger, owner = "198.51.100.66", "203.0.113.7"
    statuses = [await login(api, "owner@example.com", "guess-guess", stranger) for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    # The stranger is refused even with the right password: their pair's budget is spent...
    assert await login(api, "owner@example.com", PASSWORD, stranger) == 429
    # ...but the owner, from their own address, gets in.
    assert await login(api, "owner@example.com", PASSWORD, owner) == 200


async def test_failures_per_address_are_limited_across_emails(api: Api) -> None:
    attacker, someone_else = "198.51.100.9", "203.0.113.8"
    statuses = [await login(api, f"u{n}@example.com", "guess-guess", attacker) for n in range(21)]
    assert statuses == [401] * 20 + [429]
    assert await login(api, "u0@example.com", "guess-guess", someone_else) == 401


class TestPerEmailFromAllAddresses:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"trusted_proxies": [ip_network(PROXY)], "limit_login_email": "8/15 minutes"}

    async def test_a_botnet_is_limited_per_email(self, api: Api) -> None:
        await api.sign_up(email="target@example.com", password=PASSWORD)
        statuses = [
            await login(api, "target@example.com", "guess-guess", f"198.51.100.{n}")
            for n in range(9)
        ]
        assert statuses == [401] * 8 + [429]
        # Other emails are untouched.
        assert await login(api, "other@example.com", "guess-guess", "198.51.100.200") == 401


async def test_a_successful_login_counts_against_no_budget(api: Api) -> None:
    await api.sign_up(email="busy@example.com", password=PASSWORD)
    office = "203.0.113.20"
    # Thirty successful logins from one address stay under every limit (20 per address).
    for _ in range(30):
        assert await login(api, "busy@example.com", PASSWORD, office) == 200
    assert await login(api, "busy@example.com", "guess-guess", office) == 401


async def _burst(api: Api, address: str, attempts: int = 40) -> Counter[int]:
    """`attempts` failed logins from `address` at once, each for another email."""
    return Counter(
        await asyncio.gather(
            *(login(api, f"burst{n}@example.com", "guess-guess", address) for n in range(attempts))
        )
    )


async def test_40_concurrent_failures_get_20_through(api: Api) -> None:
    assert await _burst(api, "198.51.100.40") == {401: 20, 429: 20}


class TestInRedis:
    @pytest.fixture
    async def app(self, settings: Settings) -> AsyncIterator[FastAPI]:
        application = create_app(
            settings.model_copy(update={"redis_url": REDIS_URL}), passwords=FAST_PASSWORDS
        )
        async with application.router.lifespan_context(application):
            yield application

    async def test_40_concurrent_failures_get_20_through(self, api: Api) -> None:
        assert await _burst(api, a_fresh_address()) == {401: 20, 429: 20}


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(("sqlite", 1, ""), id="sqlite-memory"),
        pytest.param(("postgres", 1, ""), id="postgres-memory"),
        pytest.param(("postgres", 2, REDIS_URL), id="postgres-redis-2-workers"),
    ],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    backend, workers, redis_url = request.param
    env = {"BAZAAR_TRUSTED_PROXIES": PROXY, "BAZAAR_REDIS_URL": redis_url}
    if backend == "postgres":
        env["BAZAAR_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    with live_server(tmp_path_factory.mktemp("serve"), env=env, workers=workers) as running:
        yield running


async def test_a_burst_at_a_real_server_gets_no_more_than_the_limit(server: LiveServer) -> None:
    """40 failed logins at once, through `bazaar serve` at full hashing cost."""
    address = a_fresh_address()
    async with server.client(timeout=60) as client:

        async def attempt(n: int) -> int:
            form = {"username": f"burst{n}@example.com", "password": "guess-guess"}
            response = await client.post("/auth/token", data=form, headers=from_(address))
            return response.status_code

        statuses = Counter(await asyncio.gather(*(attempt(n) for n in range(40))))
    assert statuses == {401: 20, 429: 20}


def test_the_server_ignores_forwarded_for_unless_told(tmp_path: Path) -> None:
    """With no trusted proxies (the default), X-Forwarded-For from loopback is not believed."""
    with live_server(tmp_path) as running:
        statuses = [
            httpx.post(
                f"{running.url}/auth/token",
                data={"username": f"s{n}@example.com", "password": "guess-guess"},
                headers=from_(a_fresh_address()),
            ).status_code
            for n in range(21)
        ]
    assert statuses == [401] * 20 + [429]


async def test_with_redis_away_a_worker_throttles_on_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on this port: every Redis call fails at once.
    settings = Settings(
        database_url="sqlite+aiosqlite:///:memory:",
        secret_key="k" * 32,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        limit_signup="3/hour",
    )
    throttle = Throttle(settings)
    try:
        for _ in range(3):
            await throttle.spend(throttle.signup(address="192.0.2.7"))
        with pytest.raises(TooManyRequests):
            await throttle.spend(throttle.signup(address="192.0.2.7"))
        # Another address has its own budget, in this worker's memory too.
        await throttle.spend(throttle.signup(address="192.0.2.8"))
    finally:
        throttle.close()
    assert "throttle: Redis unavailable" in caplog.text
