"""The floor: Bazaar's benchmarked endpoints written directly on Starlette + asyncpg + orjson.

No ORM, no validation framework, no dependency injection: one query per
request on a pooled connection. What Bazaar does beyond this is what its
abstractions cost. It reads the same database and accepts the same tokens
(HS256, `BAZAAR_SECRET_KEY`), so that the benchmark can send both apps the
same requests.

    BAZAAR_DATABASE_URL=postgresql+asyncpg://... BAZAAR_SECRET_KEY=... \\
        python bench/floor.py --port 8001
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import jwt
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MAX_LIMIT = 1000
# Bazaar's default pool: pool_size 10 plus max_overflow 10.
POOL_MIN, POOL_MAX = 10, 20

# Plain SQL, one statement per request: what the ORM's queries boil down to.
ITEM_BY_ID = "SELECT id, name, price, owner_id, created_at FROM items WHERE id = $1"
ITEMS_BY_ID = """
    SELECT id, name, price, owner_id, created_at FROM items
    WHERE id > $1 ORDER BY id LIMIT $2
"""
ITEMS_BY_PRICE_DESC = """
    SELECT id, name, price, owner_id, created_at FROM items
    WHERE (price, id) < ($1, $2) ORDER BY price DESC, id DESC LIMIT $3
"""
ITEMS_BY_PRICE_DESC_FIRST = """
    SELECT id, name, price, owner_id, created_at FROM items
    ORDER BY price DESC, id DESC LIMIT $1
"""
USER_BY_ID = (
    "SELECT id, name, email, is_active, is_admin, is_verified, created_at FROM users WHERE id = $1"
)
INSERT_ITEM = """
    INSERT INTO items (name, price, owner_id, version) VALUES ($1, $2, $3, 1)
    RETURNING id, name, price, owner_id, created_at
"""


def _json(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(content), status_code, headers, media_type="application/json")


def _problem(status_code: int, detail: str) -> Response:
    return _json({"detail": detail}, status_code)


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


def _caller_id(request: Request) -> int | None:
    """The user id in a valid bearer token, else None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        claims = jwt.decode(
            token,
            request.app.state.secret,
            algorithms=["HS256"],
            options={"require": ["sub", "exp", "iat"]},
        )
        return int(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        return None


async def get_item(request: Request) -> Response:
    row = await _pool(request).fetchrow(ITEM_BY_ID, request.path_params["item_id"])
    if row is None:
        return _problem(404, "Item not found")
    return _json(dict(row))


async def list_items(request: Request) -> Response:
    """First page by id, or by (price desc, id desc) after `cursor=<price>,<id>`."""
    params = request.query_params
    try:
        limit = int(params.get("limit", "100"))
        sort = params.get("sort", "id")
        cursor = params.get("cursor")
        if not 1 <= limit <= MAX_LIMIT or sort not in {"id", "-price"}:
            raise ValueError(sort)
        pool = _pool(request)
        if sort == "id":
            after_id = int(cursor) if cursor else 0
            rows = await pool.fetch(ITEMS_BY_ID, after_id, limit + 1)
        elif cursor:
            price, last_id = cursor.split(",")
            rows = await pool.fetch(ITEMS_BY_PRICE_DESC, float(price), int(last_id), limit + 1)
        else:
            rows = await pool.fetch(ITEMS_BY_PRICE_DESC_FIRST, limit + 1)
    except ValueError:
        return _problem(422, "Bad limit, sort or cursor")
    headers = {}
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = str(last["id"]) if sort == "id" else f"{last['price']!r},{last['id']}"
        url = request.url.include_query_params(cursor=next_cursor)
        headers["Link"] = f'<{url}>; rel="next"'
    return _json([dict(row) for row in rows], headers=headers)


async def read_me(request: Request) -> Response:
    user_id = _caller_id(request)
    row = None if user_id is None else await _pool(request).fetchrow(USER_BY_ID, user_id)
    if row is None:
        return _problem(401, "Invalid or expired token")
    return _json(dict(row))


async def create_item(request: Request) -> Response:
    owner_id = _caller_id(request)
    if owner_id is None:
        return _problem(401, "Invalid or expired token")
    try:
        data = orjson.loads(await request.body())
        name, price = data["name"], float(data["price"])
        if not isinstance(name, str) or not 1 <= len(name) <= 100 or not price >= 0:
            raise ValueError(name)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return _problem(422, "Expected {name, price}")
    row = await _pool(request).fetchrow(INSERT_ITEM, name, price, owner_id)
    return _json(dict(row), 201, {"Location": f"/items/{row['id']}"})


async def _no_reset(connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release: these handlers leave no session state behind."""


def create_app(database_url: str, secret: str) -> Starlette:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            dsn, min_size=POOL_MIN, max_size=POOL_MAX, reset=_no_reset
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    app = Starlette(
        routes=[
            Route("/items/{item_id:int}", get_item, methods=["GET"]),
            Route("/items", list_items, methods=["GET"]),
            Route("/items", create_item, methods=["POST"]),
            Route("/users/me", read_me, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.secret = secret
    return app


def app_from_environment() -> Starlette:
    """The floor app for BAZAAR_DATABASE_URL and BAZAAR_SECRET_KEY (each worker builds one)."""
    return create_app(os.environ["BAZAAR_DATABASE_URL"], os.environ["BAZAAR_SECRET_KEY"])


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the floor app with uvicorn.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "floor:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
