"""CPU per request of Bazaar's app alone: no HTTP server, no load generator, a real database.

Drives the ASGI app directly with the bench's requests from a few concurrent
tasks and reports, per scenario, the process CPU time per request (the least of
several rounds, so that a busy machine inflates it less). It is for comparing
two versions of the code on one machine, one after the other; `make bench` is
the measure of record.

    BAZAAR_DATABASE_URL=postgresql+asyncpg://... BAZAAR_SECRET_KEY=... \\
        python bench/inprocess.py --requests 1600 --rounds 3

The database must hold users and items (`bazaar demo-data`); the scenario that
creates items adds rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

SCENARIOS = ("health", "item", "list", "me", "create")
ITEM_BODY = json.dumps({"name": "bench item", "price": 12.5}).encode()


def _scope(
    method: str, path: str, query: bytes = b"", headers: tuple[tuple[bytes, bytes], ...] = ()
) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _call(app: ASGIApp, scope: Scope, body: bytes = b"") -> int:
    """One request through the app; its status."""
    sent = False
    status = 0

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never hangs up
        raise AssertionError

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


class _Lifespan:
    """Runs the app's lifespan in a task this object keeps alive."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.started = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async def send(message: Message) -> None:
            if message["type"].startswith("lifespan.startup"):
                self.started.set()

        await self.messages.put({"type": "lifespan.startup"})
        self.task = asyncio.create_task(
            self.app(
                {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                self.messages.get,
                send,
            )
        )
        await self.started.wait()


def _requests(token: str, max_item_id: int) -> dict[str, Callable[[], tuple[Scope, bytes]]]:
    auth = (b"authorization", f"Bearer {token}".encode())
    json_body = (
        (b"content-type", b"application/json"),
        (b"content-length", str(len(ITEM_BODY)).encode()),
    )
    return {
        "health": lambda: (_scope("GET", "/health"), b""),
        "item": lambda: (_scope("GET", f"/items/{random.randint(1, max_item_id)}"), b""),
        "list": lambda: (_scope("GET", "/items", b"limit=100"), b""),
        "me": lambda: (_scope("GET", "/users/me", headers=(auth,)), b""),
        "create": lambda: (_scope("POST", "/items", headers=(auth, *json_body)), ITEM_BODY),
    }


async def _measure(options: argparse.Namespace) -> None:
    import asyncpg

    from bazaar.cli import app_factory

    app: Any = app_factory()
    lifespan = _Lifespan(app)
    await lifespan.start()
    dsn = app.state.services.settings.database_url.replace(
        "postgresql+asyncpg://", "postgresql://", 1
    )
    connection = await asyncpg.connect(dsn)
    try:
        user_id = await connection.fetchval(
            "SELECT id FROM users WHERE is_active ORDER BY id LIMIT 1"
        )
        # The session the measured requests' token names, as a login would open it.
        await connection.execute(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at)"
            " VALUES ('bench-inprocess', $1, now(), now(), now() + interval '1 day')"
            " ON CONFLICT (id) DO UPDATE SET user_id = $1, revoked_at = NULL",
            user_id,
        )
        max_item_id = await connection.fetchval("SELECT max(id) FROM items")
    finally:
        await connection.close()
    token = app.state.services.tokens.issue(user_id, "bench-inprocess")
    requests = _requests(token, max_item_id)
    best: dict[str, float] = {}
    for _ in range(options.rounds):
        for name in options.scenarios:
            make = requests[name]
            count = options.requests // options.tasks
            if name == "list":
                count //= 3

            async def client(
                make: Callable[[], tuple[Scope, bytes]] = make, count: int = count
            ) -> None:
                for _ in range(count):
                    scope, body = make()
                    status = await _call(app, scope, body)
                    if status >= 300:
                        raise SystemExit(f"{scope['method']} {scope['path']}: {status}")

            await asyncio.gather(*(client() for _ in range(options.tasks)))  # warm-up
            started = time.process_time()
            await asyncio.gather(*(client() for _ in range(options.tasks)))
            per_request = (time.process_time() - started) / (count * options.tasks) * 1e6
            best[name] = min(best.get(name, per_request), per_request)
    print("  ".join(f"{name} {best[name]:.0f}" for name in options.scenarios), "(CPU µs/request)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=1600, help="per scenario and round")
    parser.add_argument("--tasks", type=int, default=16, help="concurrent callers")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    options = parser.parse_args()
    options.scenarios = options.scenarios.split(",")
    uvloop.run(_measure(options))


if __name__ == "__main__":
    main()
