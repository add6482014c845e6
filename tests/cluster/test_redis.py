"""Test 6: Redis stopped: logins go on, still throttled (per worker), and no 5xx."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import Stack
from tests.cluster.harness import HOST_ADDRESSES, WORKERS
from tests.conftest import Figure
from tests.factories import account

pytestmark = pytest.mark.slow

PAIR_LIMIT = 3  # BAZAAR_LIMIT_LOGIN_PAIR of the cluster


async def test_logins_work_and_stay_throttled_without_redis(
    cluster_stack: Stack, figure: Figure
) -> None:
    stack = cluster_stack
    async with stack.client("127.0.0.14") as client:
        owner = await account(client)
        stack.redis.stop()
        good = [
            await client.post(
                "/auth/token", data={"username": owner.email, "password": owner.password}
            )
            for _ in range(6)
        ]
        signed_up = await client.post(
            "/users/",
            json={
                "name": "No Redis",
                "email": "no-redis@example.com",
                "password": "quiet-lantern-1",
            },
        )
        # Each worker counts on its own now: at most the pair's limit on every worker.
        most = PAIR_LIMIT * WORKERS * len(HOST_ADDRESSES)
        wrong = []
        for _ in range(most + 1):
            response = await client.post(
                "/auth/token", data={"username": owner.email, "password": "wrong-password"}
            )
            wrong.append(response)
            if response.status_code == 429:
                break
    statuses = [r.status_code for r in [*good, signed_up, *wrong]]
    logs = "".join(host.logs() for host in stack.hosts)

    figure("logins with Redis stopped", [r.status_code for r in good])
    figure("failed logins before the first 429 (bound: limit x workers)", len(wrong) - 1)
    figure("bound", most)
    figure("5xx answers", sum(s >= 500 for s in statuses))

    assert [r.status_code for r in good] == [200] * len(good)
    assert signed_up.status_code == 201, signed_up.text
    assert wrong[-1].status_code == 429
    assert {r.status_code for r in wrong[:-1]} == {401}
    assert all(s < 500 for s in statuses)
    assert "throttle: Redis unavailable" in logs
