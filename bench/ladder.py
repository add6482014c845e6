"""The ladder: `GET /items/{id}` on each layer of Bazaar's stack, to see what each one costs.

`make bench` compares Bazaar with the floor (Starlette + asyncpg + orjson). This
puts the layers Bazaar is built on between the two, each the least code that
serves the same response on that layer, so that the gap splits into what the
frameworks cost and what Bazaar adds to them:

- floor: `bench/floor.py`;
- fastapi: FastAPI's routing with a typed path parameter, the row from asyncpg;
- sqlalchemy: the same route, the row from a SQLAlchemy Core statement on
  Bazaar's mapped `items` table, executed on an `AsyncEngine`
  in autocommit, in one greenlet, behind a semaphore with a place per pooled
  connection as Bazaar's `Gate` (the pool alone lets newcomers overtake waiters:
  seconds of p99 and more CPU);
- executor: the same route, the row from Bazaar's own `Executor` and its
  `read_item` query: the statement SQLAlchemy compiled, run on asyncpg through
  SQLAlchemy's pool, behind Bazaar's gate;
- bazaar: `bazaar serve`.

Every rung is one uvicorn worker on the same database, measured by the same wrk
load as `make bench`'s item scenario, in alternating rounds; the report gives
medians. Its figures go to the terminal and to `--output` as JSON.

    .venv/bin/python bench/ladder.py --rounds 3

`in-process` calls the FastAPI rungs and Bazaar directly instead (no uvicorn, no
wrk), on a database of `bazaar demo-data` named by BAZAAR_DATABASE_URL:

    BAZAAR_DATABASE_URL=postgresql+asyncpg://... BAZAAR_SECRET_KEY=... \\
        python bench/ladder.py in-process 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

import asyncpg
import floor
import httpx
import loadgen
import orjson
import uvicorn
import uvloop
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel
from run import (
    BENCH,
    BenchError,
    Options,
    Revision,
    _query,
    bazaar_serve_command,
    demo_database,
    parse_options,
    say,
    serve,
)
from scenarios import Load
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.util import greenlet_spawn

from bazaar.cli import app_factory, tune_garbage_collection
from bazaar.config import Settings
from bazaar.db.engine import create_engine
from bazaar.db.executor import Executor
from bazaar.db.gate import create_gate
from bazaar.errors import NotFound
from bazaar.items import queries as items
from bazaar.items.models import Item

RUNGS = ("floor", "fastapi", "sqlalchemy", "executor", "bazaar")
# The rungs served by this script, each a layer of the stack under Bazaar.
Layer = Literal["fastapi", "sqlalchemy", "executor"]
POOL_SIZE, MAX_OVERFLOW = 10, 10
# As Bazaar: FastAPI's own OpenTelemetry hooks off.
NO_TELEMETRY: Any = {"tracing": False, "metrics": False, "logs": False}


class ItemOut(BaseModel):
    id: int
    name: str
    price: float
    owner_id: int
    created_at: datetime


def fastapi_app(database_url: str, layer: Layer) -> FastAPI:
    """One route, `GET /items/{item_id}`, documented as Bazaar's is; the row from asyncpg,
    from SQLAlchemy Core, or from Bazaar's executor, by `layer`."""

    def found(row: Any) -> Response:
        if row is None:
            return Response(b'{"detail":"Item not found"}', 404, media_type="application/json")
        return Response(orjson.dumps(dict(row)), media_type="application/json")

    if layer == "executor":
        # Bazaar's own pool settings (20 connections, no overflow): with overflow, connections
        # past the pool's size are opened and closed again as load comes and goes.
        settings = Settings(database_url=database_url)
        bazaar_engine = create_engine(settings, autocommit=True)
        executor = Executor(bazaar_engine, create_gate(settings))

        @contextlib.asynccontextmanager
        async def disposing(app: FastAPI) -> AsyncIterator[None]:
            yield
            await bazaar_engine.dispose()

        app = FastAPI(lifespan=disposing, openapi_url=None, telemetry=NO_TELEMETRY)

        @app.get("/items/{item_id}", response_model=ItemOut)
        async def get_item_executed(item_id: int) -> Response:
            try:
                row = await executor.read(items.read_item, item_id)
            except NotFound:
                return found(None)
            return found(row._mapping)

        return app

    if layer == "sqlalchemy":
        engine = create_async_engine(
            database_url,
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
            isolation_level="AUTOCOMMIT",
        )
        places = asyncio.Semaphore(POOL_SIZE + MAX_OVERFLOW)
        columns = (Item.id, Item.name, Item.price, Item.owner_id, Item.created_at)
        statement = select(*columns).where(Item.id == bindparam("item_id"))

        def read(item_id: int) -> Any:
            with engine.sync_engine.connect() as connection:
                row = connection.execute(statement, {"item_id": item_id}).first()
                return None if row is None else row._mapping

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            yield
            await engine.dispose()

        app = FastAPI(lifespan=lifespan, openapi_url=None, telemetry=NO_TELEMETRY)

        @app.get("/items/{item_id}", response_model=ItemOut)
        async def get_item(item_id: int) -> Response:
            async with places:
                return found(await greenlet_spawn(partial(read, item_id)))

        return app

    @contextlib.asynccontextmanager
    async def pooled(app: FastAPI) -> AsyncIterator[None]:
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        # The floor's pool: asyncpg's reset query on release skipped.
        app.state.pool = await asyncpg.create_pool(
            dsn, min_size=floor.POOL_MIN, max_size=floor.POOL_MAX, reset=floor._no_reset
        )
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=pooled, openapi_url=None, telemetry=NO_TELEMETRY)

    @app.get("/items/{item_id}", response_model=ItemOut)
    async def get_item_plain(item_id: int, request: Request) -> Response:
        return found(await request.app.state.pool.fetchrow(floor.ITEM_BY_ID, item_id))

    return app


def serve_rung(rung: str, host: str, port: int) -> None:
    app = fastapi_app(os.environ["BAZAAR_DATABASE_URL"], rung)  # type: ignore[arg-type]
    # Bazaar's garbage collection settings: the default ones cost FastAPI more than its work.
    tune_garbage_collection()
    uvicorn.run(app, host=host, port=port, workers=1, log_config=None, access_log=False)


def command_of(rung: str) -> list[str]:
    if rung == "floor":
        return [sys.executable, str(BENCH / "floor.py")]
    if rung == "bazaar":
        return bazaar_serve_command()
    return [sys.executable, str(Path(__file__).resolve()), "serve", rung]


def measure(options: Options) -> dict[str, list[loadgen.Run]]:
    shape = loadgen.LoadShape(options.connections, options.threads, options.timeout_seconds)
    runs: dict[str, list[loadgen.Run]] = {rung: [] for rung in RUNGS}
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bazaar-ladder-")))
        dsn, env = stack.enter_context(demo_database(options, workdir))
        low, high = _query(dsn, "SELECT min(id), max(id) FROM items")[0]
        load = Load("ids", "/items/", id_range=(int(str(low)), int(str(high))))
        servers = {
            rung: stack.enter_context(serve(rung, command_of(rung), env=env, workdir=workdir))
            for rung in RUNGS
        }
        for rung, server in servers.items():
            answer = httpx.get(server.url + load.sample_path(), timeout=30)
            if answer.status_code != 200 or answer.json().get("id") != low:
                raise BenchError(f"{rung} answered {answer.status_code}: {answer.text[:300]}")
        for round_number in range(1, options.rounds + 1):
            for rung, server in servers.items():
                run = loadgen.measure(
                    app=rung,
                    scenario="item",
                    round_number=round_number,
                    pid=server.pid,
                    base_url=server.url,
                    env=load.wrk_env(""),
                    warmup=options.warmup,
                    seconds=options.seconds,
                    shape=shape,
                )
                errors = f", {run.errors} errors" if run.errors else ""
                say(
                    f"round {round_number}/{options.rounds} {rung:<10} {run.rps:8,.0f} req/s"
                    f"  p99 {run.p99_ms:6.1f} ms  {run.cpu_us_per_request:5.0f} µs CPU/request"
                    f"{errors}"
                )
                runs[rung].append(run)
    return runs


def summary(runs: dict[str, list[loadgen.Run]]) -> list[dict[str, float | str]]:
    floor = statistics.median(run.rps for run in runs["floor"])
    rows: list[dict[str, float | str]] = []
    for rung, measured in runs.items():
        rps = statistics.median(run.rps for run in measured)
        rows.append(
            {
                "rung": rung,
                "rps": round(rps),
                "ratio_to_floor": round(rps / floor, 2),
                "p99_ms": round(statistics.median(run.p99_ms for run in measured), 1),
                "cpu_us_per_request": round(
                    statistics.median(run.cpu_us_per_request for run in measured)
                ),
                "errors": sum(run.errors for run in measured),
            }
        )
    return rows


async def in_process(rounds: int, requests: int = 1600, tasks: int = 16) -> dict[str, float]:
    """CPU µs per request of the FastAPI rungs and Bazaar called directly (no uvicorn, no
    wrk) on the database in BAZAAR_DATABASE_URL: the least of `rounds` rounds."""
    from inprocess import _call, _Lifespan, _scope

    url = os.environ["BAZAAR_DATABASE_URL"]
    apps: dict[str, Any] = {
        "fastapi": fastapi_app(url, "fastapi"),
        "sqlalchemy": fastapi_app(url, "sqlalchemy"),
        "executor": fastapi_app(url, "executor"),
        "bazaar": app_factory(),
    }
    # Held until the end: a lifespan task nothing refers to may be collected, and with it
    # the app's engine disposed of mid-run.
    lifespans = [_Lifespan(app) for app in apps.values()]
    for lifespan in lifespans:
        await lifespan.start()
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(dsn)
    try:
        low, high = await connection.fetchrow("SELECT min(id), max(id) FROM items")
    finally:
        await connection.close()

    async def caller(app: Any) -> None:
        for _ in range(requests // tasks):
            path = f"/items/{random.randint(low, high)}"
            if (status := await _call(app, _scope("GET", path))) != 200:
                raise BenchError(f"GET {path}: {status}")

    best = dict.fromkeys(apps, float("inf"))
    for round_number in range(rounds + 1):
        for name, app in apps.items():
            started = time.process_time()
            await asyncio.gather(*(caller(app) for _ in range(tasks)))
            if round_number:  # round 0 warms up
                cpu = (time.process_time() - started) / requests * 1e6
                best[name] = min(best[name], cpu)
    return best


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["in-process"]:
        rounds = int(argv[1]) if len(argv) > 1 else 4
        best = uvloop.run(in_process(rounds))
        print("  ".join(f"{name} {cpu:.0f}" for name, cpu in best.items()), "(CPU µs/request)")
        return 0
    if argv[:1] == ["serve"]:
        parser = argparse.ArgumentParser(prog="bench/ladder.py serve")
        parser.add_argument("rung", choices=["fastapi", "sqlalchemy", "executor"])
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8002)
        args = parser.parse_args(argv[1:])
        serve_rung(args.rung, args.host, args.port)
        return 0
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--output", type=Path, default=None)
    known, rest = own.parse_known_args(argv)
    # `make bench`'s options and database; the item scenario pages nowhere.
    options = parse_options(["--depth=1", "--deep-pages=1", *rest])
    output = known.output or options.results / f"{Revision.now().stem}-ladder.json"
    if loadgen.wrk_path() is None:
        say("wrk is not installed: apt-get install wrk")
        return 2
    try:
        rows = summary(measure(options))
    except BenchError as exc:
        say(f"ladder: {exc}")
        return 1
    say(f"{'rung':<10} {'req/s':>8} {'÷ floor':>8} {'p99 ms':>7} {'CPU µs/req':>10} errors")
    for row in rows:
        say(
            f"{row['rung']:<10} {row['rps']:8,} {row['ratio_to_floor']:8} {row['p99_ms']:7}"
            f" {row['cpu_us_per_request']:10} {row['errors']}"
        )
    output.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    say(f"figures: {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
