"""The executor's driver path gives exactly what SQLAlchemy's own execution gives.

On PostgreSQL the executor runs SQLAlchemy's compiled statements on asyncpg itself;
every hot read (and the new item's insert) is run both ways on the same rows, and
the rows, their keys and the types of their values must be the same. On SQLite the
executor takes SQLAlchemy's path, so there the test checks the harness itself.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bazaar.auth.models import LoginSession
from bazaar.auth.queries import Bearer, open_sessions, read_credentials, signed_in_user
from bazaar.config import Settings
from bazaar.db.engine import create_engine
from bazaar.db.executor import AnyRow, Executor, Runs
from bazaar.db.gate import create_gate
from bazaar.items import queries as items
from bazaar.items.models import Item
from bazaar.items.schemas import ItemCreate, ItemQuery
from bazaar.pagination import Cursors, Page, PageRequest
from bazaar.security import Tokens
from bazaar.users import queries as users
from bazaar.users.models import User
from tests.conftest import SECRET

# Names as the database holds them: any text PostgreSQL stores (no NUL, no lone surrogate).
NAMES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=100)
PRICES = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)


def _shape(value: Any) -> Any:
    """What must match: every row's keys, values and the types of the values."""
    if isinstance(value, Page):
        return ("page", _shape(list(value.rows)), value.next_cursor)
    if isinstance(value, list | tuple) and not hasattr(value, "_fields"):
        return [_shape(v) for v in value]
    if hasattr(value, "_fields"):
        return (value._fields, [(type(v), v) for v in value])
    return (type(value), value)


async def _both_ways(
    executor: Executor, engine: Any, read: Callable[..., Any], *args: Any, **kwargs: Any
) -> tuple[Any, Any]:
    driver = await executor.read(read, *args, **kwargs)
    async with engine.connect() as connection:
        own = await connection.run_sync(lambda c: read(c, *args, **kwargs))
    return _shape(driver), _shape(own)


# The session of `_only_owner`'s user.
SESSION_ID = "owner-session"


async def _only_owner(engine: AsyncEngine) -> int:
    """Empty tables but for one user, `owner@example.com` with the hash "h" and the open
    session `SESSION_ID`; their id."""
    async with engine.begin() as connection:
        await connection.execute(delete(Item))
        await connection.execute(delete(User))
        values = {"name": "Owner", "email": "owner@example.com", "hashed_password": "h"}
        user_id: int = (
            await connection.execute(insert(User).returning(User.id), values)
        ).scalar_one()
        now = datetime.now(UTC)
        opened = {"created_at": now, "last_used_at": now, "expires_at": now + timedelta(days=1)}
        await connection.execute(
            insert(LoginSession), {"id": SESSION_ID, "user_id": user_id, **opened}
        )
        return user_id


async def _compare(settings: Settings, rows: list[tuple[str, float]]) -> None:
    engine = create_engine(settings, autocommit=True)
    executor = Executor(engine, create_gate(settings))
    tokens = Tokens(SECRET, timedelta(minutes=5))
    cursors = Cursors(SECRET)
    try:
        user_id = await _only_owner(engine)
        async with engine.begin() as connection:
            await connection.execute(
                insert(Item),
                [
                    {"name": name, "price": price, "owner_id": user_id, "version": 1}
                    for name, price in rows
                ],
            )
            ids = (await connection.execute(text("SELECT id FROM items"))).scalars().all()
        bearer = Bearer(tokens.read(tokens.issue(user_id, SESSION_ID)), tokens)  # type: ignore[arg-type]
        checks: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
            (signed_in_user, (bearer,), {}),
            (open_sessions, (bearer,), {}),
            (users.read_user, (user_id,), {}),
            (read_credentials, ("owner@example.com",), {}),
            (read_credentials, ("nobody@example.com",), {}),
        ]
        checks += [(items.read_item, (item_id,), {}) for item_id in ids]
        for sort in items.SORTS.values():
            page = PageRequest(0, 2, sort, None, cursors)
            for query in (ItemQuery(sort=sort.name), ItemQuery(sort=sort.name, q="a", min_price=1)):
                checks.append((items.list_items, (), {"query": query, "page": page}))
        users_page = PageRequest(0, 10, users.BY_ID, None, cursors)
        checks.append((users.list_users, (), {"page": users_page}))
        for read, args, kwargs in checks:
            driver, own = await _both_ways(executor, engine, read, *args, **kwargs)
            assert driver == own, read.__name__
        # A next page, from the cursor the first one gave.
        for sort in items.SORTS.values():
            first = await executor.read(
                items.list_items,
                query=ItemQuery(sort=sort.name),
                page=PageRequest(0, 1, sort, None, cursors),
            )
            if first.next_cursor is not None:
                after = cursors.read(first.next_cursor, scope="items", sort=sort)
                page = PageRequest(0, 1, sort, after, cursors)
                driver, own = await _both_ways(
                    executor,
                    engine,
                    items.list_items,
                    query=ItemQuery(sort=sort.name),
                    page=page,
                )
                assert driver == own
        # The new item's insert: the same row but for the id and the time.
        # Whatever the database holds: this is about conversions, not what the API accepts.
        data = ItemCreate.model_construct(name=rows[0][0], price=rows[0][1])

        def insert_one(connection: Runs) -> AnyRow:
            return items.insert_item(connection, owner_id=user_id, data=data)

        inserted = await executor.write_one(insert_one)
        async with engine.begin() as connection:
            again = await connection.run_sync(insert_one)
        assert inserted._fields == again._fields
        assert [type(v) for v in inserted] == [type(v) for v in again]
        assert (inserted.name, inserted.price, inserted.version) == (
            again.name,
            again.price,
            again.version,
        )
        assert math.isclose(
            inserted.created_at.timestamp(), again.created_at.timestamp(), abs_tol=60
        )
    finally:
        await engine.dispose()


@hypothesis_settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.tuples(NAMES, PRICES), min_size=1, max_size=6))
def test_hot_reads_through_the_executor_match_sqlalchemy(
    database_url: str, rows: list[tuple[str, float]]
) -> None:
    asyncio.run(_compare(Settings(database_url=database_url, secret_key=SECRET), rows))


@pytest.mark.parametrize("backend", ["postgres"])
async def test_postgresql_hot_statements_run_on_the_driver(settings: Settings) -> None:
    """The path the comparison above is about is the one the hot statements take: none of
    them falls back to SQLAlchemy's execution."""
    engine = create_engine(settings, autocommit=True)
    cursors = Cursors(SECRET)
    try:
        user_id = await _only_owner(engine)
        executor = Executor(engine, create_gate(settings))
        tokens = Tokens(SECRET, timedelta(minutes=5))
        claims = tokens.read(tokens.issue(user_id, SESSION_ID))
        assert claims is not None

        def hot(connection: Runs) -> tuple[str, bool]:
            owner = signed_in_user(connection, Bearer(claims, tokens))
            new = items.insert_item(
                connection, owner_id=owner.id, data=ItemCreate(name="n", price=1)
            )
            items.read_item(connection, new.id)
            read_credentials(connection, "owner@example.com")
            for sort in items.SORTS.values():
                query = ItemQuery(sort=sort.name, q="n", min_price=0)
                items.list_items(
                    connection, query=query, page=PageRequest(0, 1, sort, None, cursors)
                )
            fell_back = getattr(connection, "_connection", "not a DriverConnection")
            return type(connection).__name__, fell_back is None

        assert await executor.write_one(hot) == ("DriverConnection", True)
    finally:
        await engine.dispose()
