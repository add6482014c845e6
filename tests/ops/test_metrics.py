"""`GET /metrics`: Prometheus text, by route template, method and status."""

from __future__ import annotations

import asyncio
import re

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST

from tests.factories import Api
from tests.ops.promtext import requests, value


async def scrape(api: Api) -> str:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def test_metrics_are_prometheus_text(api: Api) -> None:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "# TYPE bazaar_http_requests_total counter" in response.text
    assert "# TYPE bazaar_http_request_duration_seconds histogram" in response.text


async def test_requests_are_counted_by_route_template_method_and_status(api: Api) -> None:
    owner = await api.user()
    item = await api.item(owner)
    for _ in range(3):
        assert (await api.client.get(f"/items/{item['id']}")).status_code == 200
    assert (await api.client.get("/items/987654")).status_code == 404
    assert (await api.client.get("/no/such/path/31337")).status_code == 404
    assert (await api.client.request("BREW", "/health")).status_code == 405

    text = await scrape(api)
    assert requests(text, "/users", "POST", 201) == 1
    assert requests(text, "/auth/token", "POST", 200) == 1
    assert requests(text, "/items", "POST", 201) == 1
    assert requests(text, "/items/{item_id}", "GET", 200) == 3
    assert requests(text, "/items/{item_id}", "GET", 404) == 1
    # Paths that match no route, and made-up methods, share one label each.
    assert requests(text, "unmatched", "GET", 404) == 1
    assert requests(text, "/health", "other", 405) == 1
    # No label names a raw path or method (a figure such as a duration may hold the digits).
    label_sets = " ".join(re.findall(r"\{[^}]*\}", text))
    assert "987654" not in label_sets
    assert "31337" not in label_sets
    assert "BREW" not in text


async def test_latency_histogram_has_one_series_per_route_method_and_status(api: Api) -> None:
    for _ in range(2):
        await api.client.get("/health")
    text = await scrape(api)
    labels = {"route": "/health", "method": "GET", "status": "200"}
    name = "bazaar_http_request_duration_seconds"
    assert value(text, f"{name}_count", **labels) == 2
    assert value(text, f"{name}_bucket", le="+Inf", **labels) == 2
    assert value(text, f"{name}_bucket", le="10.0", **labels) == 2
    total = value(text, f"{name}_sum", **labels)
    assert total is not None
    assert 0 < total < 10


async def test_in_progress_counts_requests_being_served(api: Api, app: FastAPI) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow() -> dict[str, str]:
        entered.set()
        await release.wait()
        return {}

    # A route of this test's own on this app instance: the product has no slow endpoint.
    app.add_api_route("/test-slow", slow)
    pending = asyncio.create_task(api.client.get("/test-slow"))
    await asyncio.wait_for(entered.wait(), 5)
    during = await scrape(api)
    release.set()
    assert (await pending).status_code == 200
    after = await scrape(api)
    # Each scrape counts itself.
    assert value(during, "bazaar_http_requests_in_progress") == 2
    assert value(after, "bazaar_http_requests_in_progress") == 1
    assert requests(after, "/test-slow", "GET", 200) == 1


async def test_pool_gauge_counts_connections_checked_out(api: Api, app: FastAPI) -> None:
    await api.client.get("/ready")
    assert value(await scrape(api), "bazaar_db_pool_checked_out_connections") == 0
    async with (
        app.state.services.engine.connect() as first,
        app.state.services.engine.connect() as second,
    ):
        assert first is not second
        held = await scrape(api)
    assert value(held, "bazaar_db_pool_checked_out_connections") == 2
    assert value(await scrape(api), "bazaar_db_pool_checked_out_connections") == 0


async def test_one_worker_reports_itself(api: Api) -> None:
    assert value(await scrape(api), "bazaar_workers") == 1
