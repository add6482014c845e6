"""Many clients at once: the database decides races, writers wait their turn, nothing is a 5xx.

The smaller races (a dozen sign-ups, 20 If-Match PATCHes in-process) are in the users and
items tests; these run at a larger scale, and against a real `bazaar serve` with two worker
processes, so that writers are separate connections in separate processes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from bazaar.config import Settings
from bazaar.db.engine import create_engine
from tests.conftest import BACKENDS, SECRET
from tests.factories import Account, Api, account
from tests.server import LiveServer, live_server

PASSWORD = "correct-horse"


async def test_100_racing_sign_ups_with_one_email_make_one_user(api: Api) -> None:
    variants = ["race@example.com", "RACE@example.com", " Race@Example.COM ", "race@EXAMPLE.com"]

    async def sign_up(email: str) -> int:
        body = {"name": "Racer", "email": email, "password": PASSWORD}
        return (await api.client.post("/users/", json=body)).status_code

    statuses = Counter(await asyncio.gather(*(sign_up(v) for v in variants * 25)))
    assert statuses == {201: 1, 400: 99}
    assert await api.count("users") == 1
    assert await api.count("users", "email = 'race@example.com'") == 1


async def _empty_tables(url: str) -> None:
    engine = create_engine(Settings(database_url=url, secret_key=SECRET))
    try:
        async with engine.begin() as connection:
            await connection.execute(text("TRUNCATE items, users RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`bazaar serve` with two workers, on a new SQLite file or the emptied test PostgreSQL.

    Shared by this module's tests on that backend; each uses rows of its own.
    """
    tmp_path = tmp_path_factory.mktemp("serve")
    env = {}
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        asyncio.run(_empty_tables(url))
        env["BAZAAR_DATABASE_URL"] = url
    with live_server(tmp_path, env=env, workers=2, measured=False) as running:
        yield running


def _no_lock_errors(server: LiveServer) -> None:
    logs = server.logs()
    assert "database is locked" not in logs
    assert "Traceback" not in logs


async def test_50_writers_of_read_then_write_transactions_never_fail(server: LiveServer) -> None:
    statuses: Counter[int] = Counter()
    async with server.client(timeout=60, connections=200) as client:
        accounts = await asyncio.gather(*(account(client) for _ in range(5)))

        async def writer(n: int, owner: Account) -> None:
            async def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
                response = await client.request(method, url, headers=owner.headers, **kwargs)
                statuses[response.status_code] += 1
                return response

            created = await call("POST", "/items", json={"name": f"Item {n}", "price": n})
            url = created.headers["location"]
            for round_ in range(3):
                # Each reads the row, then writes it: the transactions that SQLite would
                # fail at once with "database is locked" if they began deferred.
                await call("PATCH", url, json={"price": n + round_})
                await call("PATCH", "/users/me", json={"name": f"Writer {n}.{round_}"})
                await call("PUT", f"/users/{owner.id}", params={"name": f"Renamed {n}"})
            await call("DELETE", url)

        owners = itertools.cycle(accounts)
        await asyncio.gather(*(writer(n, next(owners)) for n in range(50)))
        for owner in accounts:
            assert (await client.get(f"/users/{owner.id}/items")).json() == []
    assert statuses == {201: 50, 200: 50 * 3 * 3, 204: 50}
    _no_lock_errors(server)


async def test_50_racing_if_match_writes_let_exactly_one_through(server: LiveServer) -> None:
    async with server.client(timeout=60, connections=200) as client:
        owner = await account(client)
        body = {"name": "Contested", "price": 1}
        item = await client.post("/items", json=body, headers=owner.headers)
        url, etag = item.headers["location"], item.headers["etag"]

        async def write(n: int) -> int:
            headers = owner.headers | {"If-Match": etag}
            if n % 10 == 9:
                return (await client.delete(url, headers=headers)).status_code
            # A real change each (the item's own price would move no version: two winners).
            response = await client.patch(url, json={"price": 100 + n}, headers=headers)
            return response.status_code

        statuses = Counter(await asyncio.gather(*(write(n) for n in range(50))))
        winners = statuses[200] + statuses[204]
        assert winners == 1, statuses
        assert set(statuses) <= {200, 204, 404, 412}, statuses
        after = await client.get(url)
        if statuses[204]:
            assert after.status_code == 404
        else:
            assert after.headers["etag"] == '"2"'
    _no_lock_errors(server)


async def test_items_listed_while_their_seller_leaves_are_refused_never_a_500(
    server: LiveServer,
) -> None:
    """30 new items at once while their seller deletes the account: each is listed (and then
    goes with the account) or refused as the token of a user who is gone."""
    statuses: Counter[int] = Counter()
    async with server.client(timeout=60, connections=100) as client:
        for _ in range(12):
            seller = await account(client)

            async def list_item(n: int, seller: Account = seller) -> int:
                body = {"name": f"Last {n}", "price": n}
                response = await client.post("/items", json=body, headers=seller.headers)
                return response.status_code

            async def leave(seller: Account = seller) -> int:
                response = await client.delete(f"/users/{seller.id}", headers=seller.headers)
                return response.status_code

            *listed, left = await asyncio.gather(*(list_item(n) for n in range(30)), leave())
            assert left == 204
            statuses.update(listed)
            assert (await client.get(f"/users/{seller.id}/items")).status_code == 404
    assert set(statuses) <= {201, 401}, statuses
    _no_lock_errors(server)
