"""Migrations: SQLite keeps every id it handed out, and the upgrade keeps every row."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url

from bazaar import migrations
from bazaar.config import Settings
from bazaar.db.base import Base
from bazaar.db.engine import create_engine
from tests.conftest import SECRET, run_sql
from tests.factories import Api

USERS = [
    (1, "Ada", "ada@example.com", "hash-a", 1, 1, "2026-11-27 09:00:00.000000"),
    (2, "Bo", "bo@example.com", "hash-b", 1, 0, "2026-11-28 10:30:00.250000"),
    (3, "Cy", "cy@example.com", "hash-c", 0, 0, "2026-11-29 23:59:59.999999"),
]
ITEMS = [
    (1, "Lamp", 12.5, 1, "2026-11-27 09:01:00.000000", 1),
    (2, "Chair", 30.0, 3, "2026-11-29 23:59:59.999999", 4),
    (3, "Desk", 80.0, 2, "2026-11-28 11:00:00.000000", 2),
    (4, "Rug", 5.25, 1, "2026-11-30 08:00:00.000000", 1),
]
USER_COLUMNS = "id, name, email, hashed_password, is_active, is_admin, created_at"
ITEM_COLUMNS = "id, name, price, owner_id, created_at, version"
ITEM_INDEXES = {
    "ix_items_owner_id_id",
    "ix_items_price_id",
    "ix_items_name_id",
    "ix_items_created_at_id",
}


def _settings(path: Path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{path}", secret_key=SECRET)


def _upgrade_on_a_new_engine(settings: Settings) -> None:
    migrations.upgrade(settings)


def _upgrade_on_a_connection_handed_in(settings: Settings) -> None:
    async def run() -> None:
        engine = create_engine(settings)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(migrations.upgrade_on)
                # The caller's connection goes on enforcing foreign keys afterwards.
                result = await connection.exec_driver_sql("PRAGMA foreign_keys")
                assert result.scalar() == 1
        finally:
            await engine.dispose()

    asyncio.run(run())


def _database_at_0001_with_rows(path: Path) -> None:
    migrations.upgrade(_settings(path), "0001")
    with closing(sqlite3.connect(path)) as db, db:
        db.executemany(f"INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", USERS)  # noqa: S608
        db.executemany(f"INSERT INTO items ({ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", ITEMS)  # noqa: S608


def _rows(db: sqlite3.Connection, table: str, columns: str) -> list[tuple[Any, ...]]:
    return db.execute(f"SELECT {columns} FROM {table} ORDER BY id").fetchall()  # noqa: S608


@pytest.mark.parametrize("upgrade", [_upgrade_on_a_new_engine, _upgrade_on_a_connection_handed_in])
def test_sqlite_upgrade_keeps_every_row_and_never_reuses_ids(
    tmp_path: Path, upgrade: Callable[[Settings], None]
) -> None:
    path = tmp_path / "bazaar.db"
    _database_at_0001_with_rows(path)

    upgrade(_settings(path))

    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA foreign_keys = ON")
        assert _rows(db, "users", USER_COLUMNS) == USERS
        assert _rows(db, "items", ITEM_COLUMNS) == ITEMS
        assert dict(db.execute("SELECT name, seq FROM sqlite_sequence")) == {"users": 3, "items": 4}
        indexes = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items'"
        )
        assert {name for (name,) in indexes} == ITEM_INDEXES
        foreign_keys = db.execute("PRAGMA foreign_key_list(items)").fetchall()
        assert [(fk[2], fk[3], fk[4], fk[6]) for fk in foreign_keys] == [
            ("users", "owner_id", "id", "CASCADE")
        ]
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            db.execute(
                f"INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                (None, "Ada again", "ada@example.com", "h", 1, 0, "2026-12-01 00:00:00.000000"),
            )

        with db:
            db.execute("DELETE FROM items WHERE id = 4")
            new_item = db.execute(
                "INSERT INTO items (name, price, owner_id, version) VALUES ('Vase', 7, 2, 1)"
            ).lastrowid
        assert new_item == 5

        with db:
            db.execute("DELETE FROM users WHERE id = 3")
            new_user = db.execute(
                "INSERT INTO users (name, email, hashed_password) "
                "VALUES ('Di', 'di@example.com', 'h')"
            ).lastrowid
        assert new_user == 4
        # Cy's chair went with Cy.
        assert [row[0] for row in _rows(db, "items", "id")] == [1, 3, 5]


def test_sqlite_downgrade_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "bazaar.db"
    _database_at_0001_with_rows(path)
    migrations.upgrade(_settings(path))

    command.downgrade(migrations.alembic_config(_settings(path)), "0001")

    with closing(sqlite3.connect(path)) as db:
        assert _rows(db, "users", USER_COLUMNS) == USERS
        assert _rows(db, "items", ITEM_COLUMNS) == ITEMS
        tables = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        assert "AUTOINCREMENT" not in tables["users"] + tables["items"]
        assert "CONSTRAINT pk_users PRIMARY KEY (id)" in tables["users"]
        assert "CONSTRAINT pk_items PRIMARY KEY (id)" in tables["items"]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_sqlite_upgrade_refuses_rows_that_name_a_missing_parent(tmp_path: Path) -> None:
    path = tmp_path / "bazaar.db"
    _database_at_0001_with_rows(path)
    with closing(sqlite3.connect(path)) as db, db:
        # Foreign keys are off on a bare sqlite3 connection, so nothing stops this row.
        db.execute(
            f"INSERT INTO items ({ITEM_COLUMNS}) VALUES (9, 'Stray', 1, 42, '2026-12-01', 1)"  # noqa: S608
        )

    with pytest.raises(RuntimeError, match=r"items row 9 -> users"):
        migrations.upgrade(_settings(path))

    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
        assert _rows(db, "users", USER_COLUMNS) == USERS
        assert _rows(db, "items", ITEM_COLUMNS)[:4] == ITEMS
        tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert "sqlite_sequence" not in {name for (name,) in tables}


async def test_a_deleted_items_url_never_names_a_newer_item(api: Api) -> None:
    owner = await api.user()
    old = await api.item(owner, name="Lamp", price=10)
    response = await api.client.delete(f"/items/{old['id']}", headers=owner.headers)
    assert response.status_code == 204
    new = await api.item(owner, name="Chair", price=20)
    assert new["id"] != old["id"]

    response = await api.client.patch(
        f"/items/{old['id']}", json={"price": 1}, headers=owner.headers | {"If-Match": '"1"'}
    )
    assert response.status_code == 404
    assert (await api.client.get(f"/items/{new['id']}")).json() == new


async def test_the_migrated_schema_is_the_models_schema(settings: Settings) -> None:
    def differences(connection: Connection) -> list[Any]:
        sqlite = connection.dialect.name == "sqlite"
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": sqlite}
        )
        return list(compare_metadata(context, Base.metadata))

    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            if connection.dialect.name == "sqlite":
                # Autogenerate does not compare AUTOINCREMENT: the tables must say it as
                # the models do.
                result = await connection.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                )
                schema: dict[str, str] = {row.name: row.sql for row in result}
                for table in Base.metadata.sorted_tables:
                    if table.autoincrement_column is None:
                        continue  # random ids (sessions, refresh tokens): no counter to keep
                    declared = table.dialect_options["sqlite"]["autoincrement"]
                    assert declared is True, table.name
                    assert "AUTOINCREMENT" in schema[table.name], table.name
    finally:
        await engine.dispose()


@pytest.mark.slow
def test_postgres_migrations_started_together_apply_each_step_once(tmp_path: Path) -> None:
    """Four `bazaar migrate` at the same moment on an empty database: the advisory lock
    makes them take turns, so each step runs once; without it, some failed on the
    tables the first one created."""
    admin_url = os.environ.get("BAZAAR_TEST_POSTGRES_URL")
    if not admin_url:
        pytest.skip("PostgreSQL tests need BAZAAR_TEST_POSTGRES_URL (see README)")
    admin = make_url(admin_url)
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"bazaar_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(run_sql(dsn, f'CREATE DATABASE "{name}"'))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")},
        "BAZAAR_DATABASE_URL": admin.set(database=name).render_as_string(hide_password=False),
        "BAZAAR_SECRET_KEY": SECRET,
    }
    try:
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "bazaar", "migrate"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [run.communicate(timeout=120)[0] for run in runs]
    finally:
        asyncio.run(run_sql(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    steps = [
        script.revision
        for script in ScriptDirectory.from_config(migrations.alembic_config()).walk_revisions()
    ]
    applied = [m for output in outputs for m in re.findall(r"Running upgrade \w* -> (\w+)", output)]
    assert [run.returncode for run in runs] == [0] * 4, outputs
    assert sorted(applied) == sorted(steps)
