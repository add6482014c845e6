"""Replica routing in-process, on PostgreSQL: the "replica" is the primary itself (a server
not in recovery reports its own WAL position as replayed), so every part runs for real and
`/metrics` tells which role each read was given."""

from __future__ import annotations

from typing import Any

import pytest

from bazaar.db.replica import COOKIE, Replica
from tests.factories import Api
from tests.ops.promtext import value


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def settings_overrides(postgres_url: str) -> dict[str, Any]:
    return {"database_replica_url": postgres_url}


def _replica(api: Api) -> Replica:
    replica: Replica | None = api.app.state.services.replica
    assert replica is not None
    return replica


async def _reads(api: Api) -> dict[str, float]:
    text = (await api.client.get("/metrics")).text
    return {
        role: value(text, "bazaar_db_reads_total", role=role) or 0.0
        for role in ("primary", "replica")
    }


async def test_ready_names_both_roles(api: Api) -> None:
    response = await api.client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "databases": {"primary": "ok", "replica": "ok"}}


async def test_a_write_sets_its_position_and_reads_wait_for_the_replica_to_pass_it(
    api: Api,
) -> None:
    replica = _replica(api)
    owner = await api.user()
    # Checked by hand from here, so that no check falls between a write and its read.
    await replica.close()
    await replica.check()
    assert replica.usable(0)
    browsed = await api.client.get("/items")
    assert browsed.status_code == 200
    assert COOKIE not in browsed.headers.get("set-cookie", "")

    created = await api.client.post(
        "/items", json={"name": "Lamp", "price": 3}, headers=owner.headers
    )
    assert created.status_code == 201
    assert f"{COOKIE}=" in created.headers["set-cookie"]
    assert "HttpOnly" in created.headers["set-cookie"]
    written = int(api.client.cookies[COOKIE], 16)
    assert written > replica.replayed  # the write is past what the last check saw

    before = await _reads(api)
    assert (await api.client.get(f"/items/{created.json()['id']}")).status_code == 200
    after_write = await _reads(api)
    await replica.check()
    assert replica.replayed >= written
    assert (await api.client.get(f"/items/{created.json()['id']}")).status_code == 200
    after_check = await _reads(api)

    assert after_write == {"primary": before["primary"] + 1, "replica": before["replica"]}
    assert after_check == {"primary": after_write["primary"], "replica": after_write["replica"] + 1}


async def test_a_refused_write_sets_no_position_and_a_garbled_one_is_ignored(api: Api) -> None:
    refused = await api.client.post("/items", json={"name": "Lamp", "price": 3})
    assert refused.status_code == 401
    assert "set-cookie" not in refused.headers

    await _replica(api).check()
    before = await _reads(api)
    api.client.cookies.set(COOKIE, "not-a-position")
    assert (await api.client.get("/items")).status_code == 200
    after = await _reads(api)
    assert after["replica"] == before["replica"] + 1


async def test_a_replica_that_stops_answering_sends_reads_to_the_primary(api: Api) -> None:
    replica = _replica(api)
    await replica.close()
    replica.failed(ConnectionRefusedError("gone"))
    assert not replica.usable(0)
    assert (await api.client.get("/ready")).json()["databases"]["replica"] == "unreachable"
    before = await _reads(api)
    assert (await api.client.get("/items")).status_code == 200
    after = await _reads(api)
    assert after["primary"] == before["primary"] + 1
    await replica.check()
    assert replica.usable(0)
