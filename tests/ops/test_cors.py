"""CORS: closed unless `BAZAAR_CORS_ORIGINS` names the browser origins to let in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bazaar.app import create_app
from bazaar.config import Settings
from tests.conftest import SECRET

ALLOWED = "https://shop.example.com"
PREFLIGHT = {
    "Origin": ALLOWED,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


@pytest.fixture
def origins() -> list[str]:
    return []


@pytest.fixture
async def client(tmp_path: Path, origins: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
        secret_key=SECRET,
        cors_origins=origins,
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_closed_by_default(client: httpx.AsyncClient) -> None:
    preflight = await client.options("/users", headers=PREFLIGHT)
    simple = await client.get("/health", headers={"Origin": ALLOWED})
    assert preflight.status_code == 405
    assert simple.status_code == 200
    for response in (preflight, simple):
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("origins", [[ALLOWED, "http://localhost:3000"]])
async def test_listed_origins_are_let_in(client: httpx.AsyncClient) -> None:
    preflight = await client.options("/users", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed_headers = preflight.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type"} <= set(allowed_headers.replace(" ", "").split(","))
    simple = await client.get("/health", headers={"Origin": ALLOWED})
    assert simple.headers["access-control-allow-origin"] == ALLOWED
    # So that a browser client can read the id of a request that went wrong.
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("origins", [[ALLOWED]])
async def test_other_origins_are_not(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/users", headers=PREFLIGHT | {"Origin": "https://evil.example.net"}
    )
    simple = await client.get("/health", headers={"Origin": "https://evil.example.net"})
    assert preflight.status_code == 400
    for response in (preflight, simple):
        assert "access-control-allow-origin" not in response.headers
