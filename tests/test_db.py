"""The database layer: migrations match the models; requests are atomic; SQLite is set up right."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url

from bazaar import migrations
from bazaar.app import create_app
from bazaar.config import Settings
from bazaar.db.base import Base
from bazaar.db.engine import PING_AFTER_IDLE_SECONDS, create_engine
from bazaar.db.executor import Executor, Runs
from bazaar.db.gate import create_gate
from bazaar.items import queries as items
from bazaar.items.schemas import ItemCreate
from tests.conftest import SECRET
from tests.factories import Api


async def test_migrations_produce_exactly_the_models_schema(app: FastAPI) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with app.state.services.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
        assert await connection.run_sync(migrations.pending) is False


async def test_a_failed_commit_is_a_server_error_and_keeps_nothing(api: Api) -> None:
    user = await api.user()

    def fail_commit(_connection: Connection) -> None:
        raise RuntimeError("commit refused")

    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    event.listen(api.app.state.services.engine.sync_engine, "commit", fail_commit)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            # A change made in the request's unit of work (a one-statement write on the
            # autocommit engine has no commit of its own to fail).
            response = await client.patch(
                "/users/me", json={"name": "Renamed"}, headers=user.headers
            )
    finally:
        event.remove(api.app.state.services.engine.sync_engine, "commit", fail_commit)
    assert response.status_code == 500
    assert await api.count("users", "name = 'Renamed'") == 0


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_runs_with_foreign_keys_wal_and_a_busy_timeout(api: Api) -> None:
    assert await api.sql("PRAGMA foreign_keys") == 1
    assert await api.sql("PRAGMA journal_mode") == "wal"
    assert await api.sql("PRAGMA busy_timeout") == 30000


async def test_writes_wait_for_each_other_on_sqlite_instead_of_failing(api: Api) -> None:
    owner = await api.user()
    item = await api.item(owner)

    async def rename(n: int) -> int:
        response = await api.client.patch(
            f"/items/{item['id']}", json={"name": f"name {n}"}, headers=owner.headers
        )
        return response.status_code

    statuses = await asyncio.gather(*(rename(n) for n in range(20)))
    assert statuses == [200] * 20
    assert await api.sql("SELECT version FROM items WHERE id = :id", id=item["id"]) == 21


@pytest.mark.parametrize("backend", ["postgres"])
async def test_an_idle_pooled_connection_that_died_is_replaced_unseen(
    api: Api, postgres_url: str
) -> None:
    user = await api.sign_up()
    assert (await api.client.get("/items/")).status_code == 200
    await asyncio.sleep(PING_AFTER_IDLE_SECONDS + 0.2)
    # Kill every session of the test database from outside, as a restart or an idle
    # timeout in a proxy would.
    admin = make_url(postgres_url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        killed = await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            make_url(postgres_url).database,
        )
    finally:
        await connection.close()
    assert killed >= 1
    response = await api.client.get(f"/users/{user['id']}/items")
    assert response.status_code == 200


async def test_requests_get_503_when_the_database_is_unreachable() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:9/unreachable", secret_key=SECRET
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            listing = await client.get("/items/")
            ready = await client.get("/ready")
    assert listing.status_code == 503
    assert listing.json() == {"detail": "The database is unavailable, try again shortly"}
    assert listing.headers["retry-after"] == "1"
    assert ready.status_code == 503


@pytest.mark.parametrize("backend", ["postgres"])
async def test_reads_autocommit_and_sessions_run_in_one_transaction(app: FastAPI) -> None:
    # On PostgreSQL the app's engine is in autocommit: each statement of a read is a
    # transaction of its own, while a session's statements share one.
    def two_transaction_ids(connection: Runs) -> set[int]:
        query = text("SELECT pg_current_xact_id()::text::bigint")
        return {connection.execute(query).one()[0] for _ in range(2)}

    executor: Executor = app.state.services.executor
    assert len(await executor.read(two_transaction_ids)) == 2
    async with app.state.services.sessionmakers[True]() as session:
        connection = await session.connection()
        assert len(await connection.run_sync(two_transaction_ids)) == 1
        await session.rollback()


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_one_statement_write_is_kept_on_an_engine_not_in_autocommit(
    api: Api, settings: Settings
) -> None:
    owner = await api.user()
    engine = create_engine(settings)  # transactions, as the CLI's engines have
    try:
        executor = Executor(engine, create_gate(settings))
        data = ItemCreate(name="kept", price=1.0)
        row = await executor.write_one(items.insert_item, owner_id=owner.id, data=data)
    finally:
        await engine.dispose()
    assert await api.count("items", "id = :id", id=row.id) == 1
