"""A logout holds at once on every worker of `bazaar serve --workers 2`: no worker keeps a
copy of what it once checked that could let an ended session's token through."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.ops.promtext import requests
from tests.ops.test_workers import _per_worker
from tests.server import live_server

BATCH = 24
ROUNDS = 20


def _statuses_until_both_workers_answer(
    url: str, token: str, status: int, directory: Path, scratch: Path
) -> None:
    """Send batches of `GET /users/me` with `token`, each on a new connection, until both
    workers have answered some; every answer must be `status`."""

    def me(_: int) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(f"{url}/users/me", headers=headers).status_code

    counts: dict[int, float] = {}
    with ThreadPoolExecutor(BATCH) as pool:
        for round_ in range(ROUNDS):
            assert list(pool.map(me, range(BATCH))) == [status] * BATCH
            per_worker = _per_worker(directory, scratch / f"{status}-{round_}")
            counts = {
                pid: requests(text, "/users/me", "GET", status) for pid, text in per_worker.items()
            }
            if len([count for count in counts.values() if count]) == 2:
                return
    pytest.fail(f"one worker took every request: {counts}")


@pytest.mark.slow
def test_a_logout_holds_at_once_on_every_worker(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    with live_server(tmp_path, workers=2, env={"TMPDIR": str(temp)}) as server:
        [directory] = temp.glob("bazaar-metrics-*")
        with httpx.Client(base_url=server.url) as client:
            body = {"name": "Walker", "email": "walker@example.com", "password": "quiet-lantern-1"}
            assert client.post("/users/", json=body).status_code == 201
            login = client.post(
                "/auth/token", data={"username": body["email"], "password": body["password"]}
            )
            assert login.status_code == 200
            tokens = login.json()
        # Both workers have checked (and remembered) the token.
        _statuses_until_both_workers_answer(
            server.url, tokens["access_token"], 200, directory, tmp_path
        )
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert httpx.post(f"{server.url}/auth/logout", headers=headers).status_code == 204
        # From the next request on, whichever worker takes it refuses the token.
        _statuses_until_both_workers_answer(
            server.url, tokens["access_token"], 401, directory, tmp_path
        )
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        for _ in range(4):
            assert httpx.post(f"{server.url}/auth/token", data=refresh).status_code == 401
        assert server.stop() == 0
