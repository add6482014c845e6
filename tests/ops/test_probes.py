"""`GET /health` and `GET /ready`."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bazaar import migrations
from bazaar.app import create_app
from bazaar.config import Settings
from bazaar.ops.readiness import SCHEMA_BEHIND
from tests.conftest import SECRET
from tests.factories import Api
from tests.server import free_port


async def test_health_answers_ok(api: Api) -> None:
    response = await api.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_the_database_answers_and_is_migrated(api: Api) -> None:
    response = await api.client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "databases": {"primary": "ok"}}


async def test_ready_is_503_while_the_schema_is_behind(api: Api) -> None:
    version = await api.sql("SELECT version_num FROM alembic_version")
    await api.sql("DELETE FROM alembic_version")
    try:
        response = await api.client.get("/ready")
    finally:
        # The PostgreSQL database is shared by the whole run: put the version back.
        await api.sql("INSERT INTO alembic_version (version_num) VALUES (:v)", v=version)
    assert response.status_code == 503
    assert response.json() == {"detail": SCHEMA_BEHIND}
    assert (await api.client.get("/ready")).status_code == 200


async def _probe(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/ready")


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
async def test_ready_is_503_when_the_database_is_unreachable(tmp_path: Path, dialect: str) -> None:
    url = {
        "sqlite": f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'bazaar.db'}",
        "postgres": f"postgresql+asyncpg://bazaar@127.0.0.1:{free_port()}/bazaar",
    }[dialect]
    response = await _probe(Settings(database_url=url, secret_key=SECRET))
    assert response.status_code == 503
    assert response.json()["detail"].startswith("The database is unavailable")


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[int, list[int]]]:
    """A port that accepts connections and never says a word; and how many it accepted."""
    accepted: list[int] = []
    writers: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    yield port, accepted
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_ready_gives_up_on_a_database_that_does_not_answer(
    silent_server: tuple[int, list[int]],
) -> None:
    port, accepted = silent_server
    settings = Settings(
        database_url=f"postgresql+asyncpg://bazaar@127.0.0.1:{port}/bazaar", secret_key=SECRET
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state.services.readiness.timeout = 0.3
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(*(client.get("/ready") for _ in range(5)))
    assert [r.status_code for r in responses] == [503] * 5
    # The probe's own timeout gave up (the driver's, 60 s later, would have answered "The
    # database is unavailable (TimeoutError)"): no clock needed to tell them apart.
    assert {r.json()["detail"] for r in responses} == {"The database did not answer within 0.3 s"}
    # Probes that arrive while a check is running wait for that one, not a check each.
    assert len(accepted) == 1


async def test_health_touches_nothing(tmp_path: Path) -> None:
    # No lifespan: no engine at all, and /health still answers.
    app = create_app(
        Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", secret_key=SECRET)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert not (tmp_path / "b.db").exists()


async def test_ready_logs_nothing_when_all_is_well(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            assert (await api.client.get("/ready")).status_code == 200
    # Alembic would name its dialect at INFO on every probe; only the access lines remain.
    assert {r.name for r in caplog.records} <= {"bazaar.access", "httpx"}
    assert [r.name for r in caplog.records].count("bazaar.access") == 3


def test_migrating_still_says_what_it_does(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="alembic"):
        migrations.upgrade(
            Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", secret_key=SECRET)
        )
    assert "Running upgrade  -> 0001, users and items" in caplog.messages


async def test_the_root_says_where_to_go(api: Api) -> None:
    response = await api.client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Bazaar"
    assert body["version"] == importlib.metadata.version("bazaar-api")
    assert body["docs"] == "http://test/docs"
    assert body["openapi"] == "http://test/openapi.json"
    # Every link names a route (that may then want a token or a body).
    for name, url in body["links"].items():
        assert url.startswith("http://test/"), name
        path = url.removeprefix("http://test")
        method = "POST" if name in {"log_in", "sign_up"} else "GET"
        response = await api.client.request(method, path)
        assert response.status_code not in {404, 405}, (name, response.status_code)
    assert (await api.client.get(body["docs"].removeprefix("http://test"))).status_code == 200
