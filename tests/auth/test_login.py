"""Logging in: POST /auth/token, throttling of failed attempts, hash upgrades."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest
from fastapi import FastAPI

from bazaar.app import create_app
from bazaar.config import Settings
from bazaar.security import Passwords
from bazaar.throttle import Throttle
from tests.factories import Api

WRONG = {"detail": "Incorrect email or password"}


async def test_login_gives_a_bearer_token_that_works(api: Api) -> None:
    user = await api.sign_up(email="Login@Example.com", password="quiet-lantern-1")
    response = await api.login(" LOGIN@example.com ", "quiet-lantern-1")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    assert response.headers["cache-control"] == "no-store"
    me = await api.client.get(
        "/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]


async def test_wrong_password_and_unknown_email_look_the_same(api: Api) -> None:
    await api.sign_up(email="known@example.com", password="quiet-lantern-1")
    wrong_password = await api.login("known@example.com", "quiet-lantern-2")
    unknown_email = await api.login("nobody@example.com", "quiet-lantern-1")
    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert response.json() == WRONG
        assert response.headers["www-authenticate"] == "Bearer"


async def test_unknown_email_takes_about_as_long_as_a_wrong_password(api: Api) -> None:
    api.use(passwords=Passwords())  # the production cost is the point here
    await api.sign_up(email="known@example.com", password="quiet-lantern-1")

    async def median_seconds(email: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            await api.login(email, "quiet-lantern-2")
            times.append(time.perf_counter() - started)
        return sorted(times)[2]

    known, unknown = (
        await median_seconds("known@example.com"),
        await median_seconds("x@example.com"),
    )
    # Both verify an argon2 hash; without the dummy hash the unknown email would be
    # answered in a fraction of the time.
    assert unknown > known / 3


async def test_inactive_users_cannot_log_in(api: Api) -> None:
    user = await api.sign_up(email="gone@example.com", password="quiet-lantern-1")
    await api.sql("UPDATE users SET is_active = false WHERE id = :id", id=user["id"])
    response = await api.login("gone@example.com", "quiet-lantern-1")
    assert response.status_code == 401
    assert response.json() == WRONG


async def test_outdated_hashes_are_upgraded_on_login(api: Api) -> None:
    api.use(passwords=Passwords())  # the production cost is the point here
    old = await Passwords(memory_kib=8 * 1024, time_cost=1).hash("quiet-lantern-1")
    user = await api.sign_up(email="old@example.com", password="quiet-lantern-1")
    await api.sql("UPDATE users SET hashed_password = :h WHERE id = :id", h=old, id=user["id"])
    response = await api.login("old@example.com", "quiet-lantern-1")
    assert response.status_code == 200
    stored = await api.sql("SELECT hashed_password FROM users WHERE id = :id", id=user["id"])
    assert stored != old
    assert "m=19456,t=2,p=1" in stored
    # The token issued with the upgraded hash works.
    token = response.json()["access_token"]
    me = await api.client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200


@pytest.mark.parametrize(
    "form",
    [{"username": "a@example.com"}, {"password": "x"}, {}],
)
async def test_incomplete_login_forms_are_422(api: Api, form: dict[str, str]) -> None:
    response = await api.client.post("/auth/token", data=form)
    assert response.status_code == 422


async def test_failed_logins_are_throttled_per_email(api: Api) -> None:
    await api.sign_up(email="target@example.com", password="quiet-lantern-1")
    for _ in range(5):
        assert (await api.login("target@example.com", "guess-guess")).status_code == 401
    throttled = await api.login("target@example.com", "quiet-lantern-1")
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["retry-after"]) <= 15 * 60
    # Other accounts are not affected.
    await api.sign_up(email="other@example.com", password="quiet-lantern-1")
    assert (await api.login("other@example.com", "quiet-lantern-1")).status_code == 200


async def test_a_successful_login_gives_the_email_its_budget_back(api: Api) -> None:
    await api.sign_up(email="typo@example.com", password="quiet-lantern-1")
    for _ in range(4):
        assert (await api.login("typo@example.com", "guess-guess")).status_code == 401
    assert (await api.login("typo@example.com", "quiet-lantern-1")).status_code == 200
    for _ in range(4):
        assert (await api.login("typo@example.com", "guess-guess")).status_code == 401
    assert (await api.login("typo@example.com", "quiet-lantern-1")).status_code == 200


async def test_failed_logins_are_throttled_per_address(api: Api) -> None:
    for n in range(20):
        assert (await api.login(f"spray{n}@example.com", "guess-guess")).status_code == 401
    response = await api.login("spray-next@example.com", "guess-guess")
    assert response.status_code == 429
    assert "retry-after" in response.headers


async def test_two_instances_share_one_budget_in_redis(
    settings: Settings, api: Api, redis_url: str
) -> None:
    redis_settings = settings.model_copy(update={"redis_url": redis_url})
    prefix = f"bazaar-test-{uuid.uuid4().hex}"
    email = f"shared-{uuid.uuid4().hex}@example.com"
    first, second = (
        Throttle(redis_settings, key_prefix=prefix),
        Throttle(redis_settings, key_prefix=prefix),
    )
    try:
        await api.sign_up(email=email, password="quiet-lantern-1")
        outcomes: list[Any] = []
        for n in range(6):
            instance: FastAPI = create_app(settings)
            async with instance.router.lifespan_context(instance):
                throttle = first if n % 2 == 0 else second
                instance.state.services = replace(instance.state.services, throttle=throttle)
                from httpx import ASGITransport, AsyncClient

                transport = ASGITransport(app=instance)
                async with AsyncClient(transport=transport, base_url="http://test") as client:
                    response = await client.post(
                        "/auth/token", data={"username": email, "password": "guess-guess"}
                    )
                    outcomes.append(response.status_code)
        assert outcomes == [401] * 5 + [429]
    finally:
        for throttle in (first, second):
            await throttle.storage.reset()
            throttle.close()


class _WatchedPasswords(Passwords):
    """Production hashing that counts the verifications running at each moment, and where."""

    def __init__(self) -> None:
        # No 503 for a login that waits its turn long on a busy machine: not the point here.
        super().__init__(max_wait=300)
        self.running = 0
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def _verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        with self._lock:
            self.running += 1
            self.threads.add(threading.get_ident())
        try:
            return super()._verify(password, hashed)
        finally:
            with self._lock:
                self.running -= 1


async def test_concurrent_logins_do_not_stall_the_event_loop(api: Api) -> None:
    passwords = _WatchedPasswords()  # the production cost is the point here
    api.use(passwords=passwords)
    users = [await api.sign_up(password="quiet-lantern-1") for _ in range(20)]
    answered_while_hashing = 0
    done = asyncio.Event()

    async def probe_health() -> None:
        nonlocal answered_while_hashing
        while not done.is_set():
            response = await api.client.get("/health")
            assert response.status_code == 200
            # Were a hash run on the event loop, no probe could be answered while it runs:
            # the loop would be inside it. No clock is read, so a busy machine changes
            # how many probes overlap a hash, not whether any does.
            answered_while_hashing += passwords.running > 0
            await asyncio.sleep(0.005)

    async def logins() -> list[int]:
        try:
            responses = await asyncio.gather(
                *(api.login(u["email"], "quiet-lantern-1") for u in users)
            )
            return [response.status_code for response in responses]
        finally:
            done.set()

    statuses, _ = await asyncio.gather(logins(), probe_health())
    assert statuses == [200] * 20
    assert threading.get_ident() not in passwords.threads
    assert answered_while_hashing > 0
    # How long a probe waits meanwhile is the benchmark's to measure (`make bench`).
