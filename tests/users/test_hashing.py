"""Hashing never holds the database: argon2 runs with no pooled connection and no write lock."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from bazaar.config import Settings
from bazaar.db.engine import create_engine
from bazaar.security import Passwords
from tests.conftest import FAST_PASSWORDS
from tests.factories import Account, Api

PASSWORD = "quiet-lantern-1"
# Far longer than any of these requests takes, even on a busy machine; reached only when a
# request waits for the one connection (or the write lock) a hash is holding.
PATIENCE_SECONDS = 20


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # One connection per worker on PostgreSQL: a hash that held it would stop every other
    # request. On SQLite, a hash that held the write lock would stop every other writer.
    return {"pool_size": 1, "max_overflow": 0}


class HeldPasswords(Passwords):
    """Hashes and verifies as the suite does, but each waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__(memory_kib=1024, time_cost=1, parallelism=1)
        self.hashing = asyncio.Event()
        self.release = asyncio.Event()

    async def _run(self, function: Callable[..., Any], *args: object) -> Any:
        self.hashing.set()
        await self.release.wait()
        return await super()._run(function, *args)


async def _others_go_on_while_hashing(api: Api, request: Awaitable[httpx.Response]) -> int:
    """Holds `request` in its hash; meanwhile a read and a write by someone else complete."""
    seller = await api.user()
    item = await api.item(seller)
    held = HeldPasswords()
    api.use(passwords=held)
    pending = asyncio.ensure_future(request)
    try:
        await asyncio.wait_for(held.hashing.wait(), PATIENCE_SECONDS)
        async with asyncio.timeout(PATIENCE_SECONDS):
            read = await api.client.get(f"/items/{item['id']}")
            write = await api.client.post(
                "/items/", json={"name": "Meanwhile", "price": 1}, headers=seller.headers
            )
        assert (read.status_code, write.status_code) == (200, 201)
    finally:
        held.release.set()
    return (await pending).status_code


async def test_a_sign_up_hashes_holding_nothing(api: Api) -> None:
    body = {"name": "New", "email": "new@example.com", "password": PASSWORD}
    assert await _others_go_on_while_hashing(api, api.client.post("/users/", json=body)) == 201
    assert await api.count("users", "email = 'new@example.com'") == 1


async def test_a_login_verifies_holding_nothing(api: Api) -> None:
    user = await api.sign_up(email="known@example.com", password=PASSWORD)
    status = await _others_go_on_while_hashing(api, api.login(user["email"], PASSWORD))
    assert status == 200


async def test_a_password_change_hashes_holding_nothing(api: Api) -> None:
    user = await api.user()
    change = api.client.patch(
        "/users/me",
        json={"password": "a-new-quiet-lantern", "current_password": user.password},
        headers=user.headers,
    )
    assert await _others_go_on_while_hashing(api, change) == 200
    api.use(passwords=FAST_PASSWORDS)
    assert (await api.login(user.email, "a-new-quiet-lantern")).status_code == 200


async def test_a_password_changed_meanwhile_is_not_overwritten(api: Api) -> None:
    """Two changes by one user that both proved the old password: the second is refused."""
    user = await api.user()
    held = HeldPasswords()
    api.use(passwords=held)

    def change(to: str, account: Account) -> Awaitable[httpx.Response]:
        body = {"password": to, "current_password": account.password}
        return api.client.patch("/users/me", json=body, headers=account.headers)

    first = asyncio.ensure_future(change("first-new-lantern", user))
    await asyncio.wait_for(held.hashing.wait(), PATIENCE_SECONDS)
    # The first is held in its hash; the second runs through, proving the same old password.
    api.use(passwords=FAST_PASSWORDS)
    assert (await change("second-new-lantern", user)).status_code == 200
    held.release.set()
    assert (await first).status_code in {401, 403}
    assert (await api.login(user.email, "second-new-lantern")).status_code == 200


async def test_too_many_waiting_hashes_get_a_503(api: Api) -> None:
    """One hash at a time, a short wait for it: a burst is partly turned away (on any
    number of cores: the default of one hash per spare core would serve 30 at once on 32)."""
    api.use(passwords=Passwords(max_wait=0.05, at_once=1))  # the production cost

    async def sign_up(n: int) -> httpx.Response:
        body = {"name": "Burst", "email": f"burst{n}@example.com", "password": PASSWORD}
        return await api.client.post("/users/", json=body)

    responses = await asyncio.gather(*(sign_up(n) for n in range(30)))
    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) == {201, 503}, statuses
    assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 503)
    assert await api.count("users") == statuses[201]


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_password_changed_under_a_change_in_flight_is_not_overwritten(
    api: Api, settings: Settings
) -> None:
    """The change in flight has checked its caller and proved the old password; the row
    changes before it locks it: it sees the new hash and is refused, rather than write
    over it."""
    user = await api.user()
    # Connections of its own: the app's one pooled connection is the change's.
    outside = create_engine(settings.model_copy(update={"pool_size": 2}))
    try:
        async with outside.connect() as other, outside.connect() as watcher:
            transaction = await other.begin()
            # Holds the row, as a change committing meanwhile does.
            await other.execute(
                text("SELECT id FROM users WHERE id = :id FOR UPDATE"), {"id": user.id}
            )
            change = asyncio.ensure_future(
                api.client.patch(
                    "/users/me",
                    json={"password": "a-new-quiet-lantern", "current_password": user.password},
                    headers=user.headers,
                )
            )
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            async with asyncio.timeout(PATIENCE_SECONDS):
                while not await watcher.scalar(waiting):  # noqa: ASYNC110 - polls the server
                    await asyncio.sleep(0.01)
            await other.execute(
                text("UPDATE users SET hashed_password = 'changed meanwhile' WHERE id = :id"),
                {"id": user.id},
            )
            await transaction.commit()
    finally:
        await outside.dispose()
    response = await change
    assert response.status_code == 403, response.text
    stored = await api.sql("SELECT hashed_password FROM users WHERE id = :id", id=user.id)
    assert stored == "changed meanwhile"
