"""A small, bounded load of real HTTP requests, each one's outcome recorded for later judgement."""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import Account

PASSWORD = "correct-horse-battery"
POOL_GAUGE = "bazaar_db_pool_checked_out_connections"
IN_PROGRESS_GAUGE = "bazaar_http_requests_in_progress"
# Request kinds that need the database (every one but `/health`; `/ready` is judged apart).
DATABASE_KINDS = frozenset({"create", "read", "list", "sign-up", "churn-create", "delete-user"})


@dataclass(frozen=True)
class Outcome:
    """One request: what it was, when it ran, and how it was answered (status 0: no answer)."""

    kind: str
    started: float
    ended: float
    status: int
    detail: str | None = None
    name: str | None = None
    created_id: int | None = None
    error: str | None = None
    # Which host answered, when a load balancer says (its X-Served-By header).
    served_by: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Load:
    """Writers that create uniquely named items, readers, and a `/ready` prober, until stopped."""

    client: httpx.AsyncClient
    owners: list[Account]
    pause: float = 0.02
    outcomes: list[Outcome] = field(default_factory=list)
    _names: Iterator[int] = field(default_factory=itertools.count)
    _run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def acknowledged(self) -> dict[int, str]:
        """Item id to name, for every create of a writer answered 201 (their owners stay)."""
        return {
            o.created_id: o.name or ""
            for o in self.outcomes
            if o.kind == "create" and o.status == 201 and o.created_id is not None
        }

    async def _request(
        self, kind: str, send: Awaitable[httpx.Response], name: str | None = None
    ) -> Outcome:
        started = time.monotonic()
        try:
            response = await send
        except httpx.HTTPError as exc:
            outcome = Outcome(kind, started, time.monotonic(), 0, name=name, error=repr(exc))
        else:
            body: Any = None
            json_type = response.headers.get("content-type", "").startswith("application/json")
            if response.content and json_type:
                body = response.json()
            detail = body.get("detail") if isinstance(body, dict) else None
            created_id = body.get("id") if response.status_code == 201 else None
            outcome = Outcome(
                kind,
                started,
                time.monotonic(),
                response.status_code,
                detail=detail if isinstance(detail, str) else None,
                name=name,
                created_id=created_id,
                served_by=response.headers.get("x-served-by"),
            )
        self.outcomes.append(outcome)
        return outcome

    async def _writer(self, stop: asyncio.Event, owner: Account) -> None:
        while not stop.is_set():
            name = f"load-{self._run}-{next(self._names)}"
            body = {"name": name, "price": 9.5}
            await self._request(
                "create", self.client.post("/items/", json=body, headers=owner.headers), name
            )
            await asyncio.sleep(self.pause)

    async def _reader(self, stop: asyncio.Event, rng: random.Random) -> None:
        while not stop.is_set():
            known = list(self.acknowledged)
            if known and rng.random() < 0.7:
                item_id = rng.choice(known)
                await self._request("read", self.client.get(f"/items/{item_id}"))
            else:
                await self._request("list", self.client.get("/items/?limit=20&sort=-id"))
            await asyncio.sleep(self.pause)

    async def _ready_prober(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._request("ready", self.client.get("/ready"))
            await asyncio.sleep(0.1)

    async def _churner(self, stop: asyncio.Event) -> None:
        """Sign a user up, give them items, delete them: the items must go with them."""
        while not stop.is_set():
            email = f"churn-{uuid.uuid4().hex[:12]}@example.com"
            body = {"name": "Churn", "email": email, "password": PASSWORD}
            signed_up = await self._request("sign-up", self.client.post("/users/", json=body))
            if signed_up.status != 201 or signed_up.created_id is None:
                await asyncio.sleep(self.pause)
                continue
            try:
                token = await self.client.post(
                    "/auth/token", data={"username": email, "password": PASSWORD}
                )
            except httpx.HTTPError:
                token = httpx.Response(0)
            if token.status_code != 200:
                await asyncio.sleep(self.pause)
                continue
            churned = Account(signed_up.created_id, email, PASSWORD, token.json()["access_token"])
            for _ in range(2):
                if stop.is_set():
                    return
                name = f"churn-{self._run}-{next(self._names)}"
                item = {"name": name, "price": 1.0}
                created = self.client.post("/items/", json=item, headers=churned.headers)
                await self._request("churn-create", created, name)
            await self._request(
                "delete-user",
                self.client.delete(f"/users/{churned.id}", headers=churned.headers),
                email,
            )
            await asyncio.sleep(self.pause)

    @asynccontextmanager
    async def running(
        self, *, writers: int = 3, readers: int = 2, ready: bool = False, churn: bool = False
    ) -> AsyncIterator[None]:
        """Run the load while the block runs; stop it, and wait for every request, at the end."""
        stop = asyncio.Event()
        rng = random.Random(1234)
        tasks = [
            asyncio.create_task(self._writer(stop, self.owners[n % len(self.owners)]))
            for n in range(writers)
        ]
        tasks += [asyncio.create_task(self._reader(stop, rng)) for _ in range(readers)]
        if ready:
            tasks.append(asyncio.create_task(self._ready_prober(stop)))
        if churn:
            tasks.append(asyncio.create_task(self._churner(stop)))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)


_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):", re.MULTILINE)
# Bazaar's access line: "... bazaar.access [id] GET /items/7 200 1.2ms route=/items/{item_id}"
_ACCESS_LINE = re.compile(r"bazaar\.access \[[^\]]*\] [A-Z]+ \S+ (\d{3}) \S+ route=(\S+)")


def tracebacks(log: str) -> list[str]:
    """The tracebacks in a server log, each with the few lines before it for context."""
    lines = log.splitlines()
    return [
        "\n".join(lines[max(0, number - 3) : number + 30])
        for number, line in enumerate(lines)
        if _TRACEBACK.match(line)
    ]


def logged_statuses(log: str) -> Counter[int]:
    """How many requests the server's access log reports, by status."""
    return Counter(int(match.group(1)) for match in _ACCESS_LINE.finditer(log))


def logged_routes(log: str, status: int) -> Counter[str]:
    """How many requests the server's access log reports with `status`, by route."""
    return Counter(m.group(2) for m in _ACCESS_LINE.finditer(log) if int(m.group(1)) == status)


def gauge(text: str, name: str) -> float:
    """The value of an unlabelled gauge in Prometheus text."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} is not in /metrics:\n{text}")


async def checked_out(client: httpx.AsyncClient) -> float:
    """Connections checked out of the server's pool, from `/metrics`."""
    return gauge((await client.get("/metrics")).text, POOL_GAUGE)
