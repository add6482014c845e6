"""The admin UI's list pages on 10,000 users and 100,000 items, on a throwaway PostgreSQL
database: how long each page takes, seen from the client, with one `bazaar serve` worker.

    .venv/bin/python bench/admin_lists.py [--server postgresql://postgres@127.0.0.1:5432/postgres]
        [--users 10000] [--items 100000] [--repeat 30]

It creates the database, fills it with `bazaar demo-data`, makes an admin with
`bazaar create-admin`, signs in to /admin, times each page (after two warm-up
requests), prints a Markdown table, and drops the database at the end, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx

PASSWORD = "bench-admin-password"  # noqa: S105 - a throwaway database's
PAGES = [
    ("users, first page", "/admin/user/list"),
    ("users, search 'smith'", "/admin/user/list?search=smith"),
    ("users, sorted by email", "/admin/user/list?sortBy=email&sort=asc"),
    ("users, admins only", "/admin/user/list?is_admin=true"),
    ("items, first page", "/admin/item/list"),
    ("items, sorted by price", "/admin/item/list?sortBy=price&sort=desc"),
    ("items, search 'lamp'", "/admin/item/list?search=lamp"),
    ("items, one owner", "/admin/item/list?owner_id=5&owner_id_op=equals"),
    (
        "items, price 10 to 20",
        "/admin/item/list?price_from=10&price_from_op=greater_than"
        "&price_to=20&price_to_op=less_than",
    ),
    ("items, page 400", "/admin/item/list?page=400"),
]


async def _sql(dsn: str, statement: str) -> float:
    connection = await asyncpg.connect(dsn)
    try:
        start = time.perf_counter()
        await connection.execute(statement)
        return time.perf_counter() - start
    finally:
        await connection.close()


@contextmanager
def _database(server: str) -> Iterator[str]:
    name = f"bazaar_admin_bench_{secrets.token_hex(4)}"
    asyncio.run(_sql(server, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _bazaar(env: dict[str, str], *args: str, **kwargs: object) -> None:
    command = [sys.executable, "-m", "bazaar", *args]
    subprocess.run(command, env=env, check=True, timeout=900, **kwargs)  # type: ignore[call-overload]  # noqa: S603


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    with _database(args.server) as dsn:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
        env |= {
            "BAZAAR_DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
            "BAZAAR_SECRET_KEY": secrets.token_urlsafe(48),
        }
        _bazaar(env, "migrate")
        _bazaar(env, "demo-data", "--users", str(args.users), "--items", str(args.items))
        email = "bench-admin@example.com"
        admin_env = env | {"BAZAAR_ADMIN_PASSWORD": PASSWORD}
        _bazaar(admin_env, "create-admin", "--email", email, "--name", "Bench", input=b"")
        full_count = asyncio.run(_sql(dsn, "SELECT count(*) FROM items"))

        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = Path(os.devnull).open("wb")  # noqa: SIM115 - closed below
        command = [sys.executable, "-m", "bazaar", "serve", "--no-migrate", "--port", str(port)]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)  # noqa: S603
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                for _ in range(300):
                    try:
                        if client.get("/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.1)
                signed_in = client.post(
                    "/admin/login",
                    data={"username": email, "password": PASSWORD},
                    headers={"Origin": url},
                )
                assert signed_in.status_code == 302, signed_in.text
                print(
                    f"{args.users:,} users, {args.items:,} items; {args.repeat} requests a page\n"
                )
                print("| page | median ms | p95 ms |\n| --- | ---: | ---: |")
                for label, path in PAGES:
                    times = []
                    for n in range(args.repeat + 2):
                        start = time.perf_counter()
                        response = client.get(path)
                        elapsed = time.perf_counter() - start
                        assert response.status_code == 200, (path, response.status_code)
                        if n >= 2:
                            times.append(elapsed * 1000)
                    p95 = statistics.quantiles(times, n=20)[-1]
                    print(f"| {label} | {statistics.median(times):.1f} | {p95:.1f} |")
                counted = f"{full_count * 1000:.1f} ms"
                print(f"\nFor scale: one full count of the items took {counted}.")
        finally:
            process.terminate()
            process.wait(20)
            log.close()


if __name__ == "__main__":
    main()
