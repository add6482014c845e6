"""`bazaar serve --workers 2`: one /metrics that adds up what every worker served."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.ops.promtext import requests, value
from tests.server import live_server

BATCH = 24


def _per_worker(directory: Path, scratch: Path) -> dict[int, str]:
    """Each worker's own metrics, read from its own file of the shared directory."""
    texts = {}
    for path in directory.glob("counter_*.db"):
        pid = int(re.fullmatch(r"counter_(\d+)\.db", path.name).group(1))  # type: ignore[union-attr]
        alone = scratch / str(pid)
        alone.mkdir(parents=True)
        shutil.copy(path, alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        texts[pid] = generate_latest(registry).decode()
    return texts


def _counts_once_all_recorded(directory: Path, scratch: Path, sent: int) -> dict[int, float]:
    """Each worker's count of the requests, read until they add up to `sent`.

    A worker records a request's metrics after its response has gone: the client can
    read the files before the last few are counted (23 of 24 on a busy machine).
    """
    deadline = time.monotonic() + 30
    for attempt in itertools.count():
        per_worker = _per_worker(directory, scratch / str(attempt))
        counts = {pid: requests(text, "/users/me", "GET", 401) for pid, text in per_worker.items()}
        if sum(counts.values()) == sent or time.monotonic() > deadline:
            return counts
        time.sleep(0.05)
    raise AssertionError("unreachable")


@pytest.mark.slow
def test_metrics_add_up_across_two_workers(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"TMPDIR": str(temp), "BAZAAR_LOG_FORMAT": "json"}
    with live_server(tmp_path, workers=2, env=env) as server:
        # `bazaar serve` made the workers a fresh directory to share their metrics in.
        [directory] = temp.glob("bazaar-metrics-*")
        sent = 0
        counts: dict[int, float] = {}
        with ThreadPoolExecutor(BATCH) as pool:
            # Many requests at once, each on a new connection, until both workers have
            # taken some: which worker accepts a connection is the kernel's choice.
            for _ in range(20):
                statuses = pool.map(
                    lambda _: httpx.get(f"{server.url}/users/me").status_code, range(BATCH)
                )
                assert list(statuses) == [401] * BATCH
                sent += BATCH
                counts = _counts_once_all_recorded(directory, tmp_path / f"scratch-{sent}", sent)
                if len([count for count in counts.values() if count]) == 2:
                    break
        assert len([count for count in counts.values() if count]) == 2, counts
        assert sum(counts.values()) == sent

        # Whichever worker answers the scrape, it reports the sum over both.
        for _ in range(6):
            text = httpx.get(f"{server.url}/metrics").text
            assert requests(text, "/users/me", "GET", 401) == sent
            assert (
                value(
                    text,
                    "bazaar_http_request_duration_seconds_count",
                    route="/users/me",
                    method="GET",
                    status="401",
                )
                == sent
            )
            assert value(text, "bazaar_workers") == 2
            assert value(text, "bazaar_db_pool_checked_out_connections") == 0

        assert server.stop() == 0
    assert not directory.exists()

    # Both workers log as configured: JSON lines, one per request, with its id.
    entries = [json.loads(line) for line in server.logs().splitlines()]
    access = [e for e in entries if e["logger"] == "bazaar.access" and e["route"] == "/users/me"]
    assert len(access) == sent
    assert len({e["request_id"] for e in access}) == sent
