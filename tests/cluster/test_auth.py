"""Test 2: the login throttle, a logout and a revoked session hold on every host at once."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.cluster.conftest import Stack
from tests.conftest import Figure
from tests.factories import account

pytestmark = pytest.mark.slow

HOSTS = {"h1", "h2", "h3"}
# Enough tries for round-robin balancing to reach every host several times over.
MAX_TRIES = 30


async def _on_every_host(send: Callable[[], Awaitable[httpx.Response]]) -> list[tuple[int, str]]:
    """(status, host) of requests sent until every host has answered one."""
    answers: list[tuple[int, str]] = []
    for _ in range(MAX_TRIES):
        response = await send()
        answers.append((response.status_code, response.headers.get("x-served-by", "")))
        if {host for _, host in answers} == HOSTS:
            return answers
    raise AssertionError(f"not every host answered: {answers}")


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/auth/token", data={"username": email, "password": password})


async def test_login_throttle_holds_across_hosts(cluster_stack: Stack, figure: Figure) -> None:
    stack = cluster_stack
    # Limits of the cluster: 3 failures per (email, address), 6 per address.
    async with (
        stack.client("127.0.0.11") as a,
        stack.client("127.0.0.12") as b,
        stack.client("127.0.0.13") as c,
    ):
        owner = await account(b)
        pair = [await _login(a, owner.email, "wrong-password") for _ in range(4)]
        right_from_a = await _login(a, owner.email, owner.password)
        right_from_b = await _login(b, owner.email, owner.password)
        strangers = [
            await _login(c, f"nobody-{uuid.uuid4().hex[:8]}@example.com", "wrong-password")
            for _ in range(7)
        ]

    pair_hosts = {r.headers.get("x-served-by") for r in pair[:3]}
    address_hosts = {r.headers.get("x-served-by") for r in strangers[:6]}
    figure("hosts that took the 3 failures of one pair", len(pair_hosts))
    figure("hosts that took the 6 failures of one address", len(address_hosts))
    figure("pair: statuses", [r.status_code for r in pair])
    figure("address: statuses", [r.status_code for r in strangers])

    assert [r.status_code for r in pair] == [401, 401, 401, 429]
    assert len(pair_hosts) >= 2  # spread, yet counted as one budget
    # The pair's budget is spent even for the right password; the owner's own address is not.
    assert right_from_a.status_code == 429
    assert right_from_b.status_code == 200
    assert [r.status_code for r in strangers] == [401] * 6 + [429]
    assert len(address_hosts) >= 2
    assert "retry-after" in strangers[-1].headers


async def test_logout_and_revoked_session_hold_on_every_host_at_once(
    cluster_stack: Stack, figure: Figure
) -> None:
    stack = cluster_stack
    async with stack.client("127.0.0.15") as client:
        owner = await account(client)
        second = await _login(client, owner.email, owner.password)
        assert second.status_code == 200
        other = {"Authorization": f"Bearer {second.json()['access_token']}"}

        async def me(headers: dict[str, str]) -> httpx.Response:
            return await client.get("/users/me", headers=headers)

        # Both sessions' tokens work on every host, which has checked them.
        before = await _on_every_host(lambda: me(owner.headers))
        before_other = await _on_every_host(lambda: me(other))
        sessions = await client.get("/auth/sessions", headers=owner.headers)
        [other_id] = [s["id"] for s in sessions.json() if not s["current"]]
        # The other session is revoked from here: its token fails at once on every host.
        revoked = await client.delete(f"/auth/sessions/{other_id}", headers=owner.headers)
        after_revoke = await _on_every_host(lambda: me(other))
        still = await _on_every_host(lambda: me(owner.headers))
        # Then this one logs out.
        logout = await client.post("/auth/logout", headers=owner.headers)
        after_logout = await _on_every_host(lambda: me(owner.headers))

    figure("requests after the revocation until every host answered", len(after_revoke))
    figure("statuses after the revocation", sorted({s for s, _ in after_revoke}))
    figure("statuses after the logout", sorted({s for s, _ in after_logout}))

    assert {s for s, _ in before + before_other + still} == {200}
    assert revoked.status_code == 204
    assert {s for s, _ in after_revoke} == {401}
    assert logout.status_code == 204
    assert {s for s, _ in after_logout} == {401}
