"""Odd input on every route: a 4xx a person can act on, never a 5xx, and nothing changed.

Each route gets impossible ids, hostile strings (NUL, lone surrogates, control characters,
a megabyte of text), numbers JSON cannot hold (NaN, infinities, 1e309), malformed bodies,
wrong content types and oversized bodies with and without a Content-Length. Every refused
request must leave the tables exactly as they were. Text that is allowed (emoji, RTL, CJK,
combining marks) must come back exactly as it was sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from sqlalchemy import text

from bazaar.app import create_app
from bazaar.config import Settings
from tests.conftest import SECRET
from tests.factories import Account, Api

MiB = 1024 * 1024


@dataclass(frozen=True)
class Route:
    """One operation, with a request to it that would succeed, for the edge cases to spoil."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    query: dict[str, Any] = field(default_factory=dict)

    @property
    def id_name(self) -> str | None:
        return next((n for n in ("user_id", "item_id") if f"{{{n}}}" in self.path), None)

    @property
    def has_body(self) -> bool:
        return self.json is not None or self.form is not None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


LOGIN = {"username": "victim@example.com", "password": "correct-horse"}
ROUTES = [
    Route(
        "POST",
        "/users",
        json={"name": "N", "email": "n@example.com", "password": "quiet-lantern-1"},
    ),
    Route("GET", "/users", query={"limit": 10}),
    Route("GET", "/users/me"),
    Route("PATCH", "/users/me", json={"name": "Renamed"}),
    Route("GET", "/users/{user_id}"),
    Route("PUT", "/users/{user_id}", query={"name": "Renamed"}),
    Route("PATCH", "/users/{user_id}", json={"name": "Renamed", "is_active": True}),
    Route("DELETE", "/users/{user_id}"),
    Route("GET", "/users/{user_id}/items", query={"q": "Lamp", "min_price": 0, "sort": "price"}),
    Route("POST", "/items", json={"name": "Lamp", "price": 1.5}),
    Route("GET", "/items", query={"q": "Lamp", "min_price": 0, "max_price": 10, "owner_id": 1}),
    Route("GET", "/items/{item_id}"),
    Route("PATCH", "/items/{item_id}", json={"name": "Desk", "price": 2}),
    Route("DELETE", "/items/{item_id}"),
    Route("POST", "/auth/token", form=LOGIN),
    # Only spoiled copies are sent: the token need not be genuine.
    Route("POST", "/auth/token", form={"grant_type": "refresh_token", "refresh_token": "r" * 43}),
    Route("POST", "/auth/logout"),
    Route("GET", "/auth/sessions"),
    Route("DELETE", "/auth/sessions/{session_id}"),
    Route("DELETE", "/auth/sessions"),
    Route("DELETE", "/users/{user_id}/sessions"),
    Route("POST", "/auth/verify-email", json={"token": "t" * 43}),
    Route("POST", "/auth/verify-email/resend"),
    Route("POST", "/auth/forgot-password", json={"email": "victim@example.com"}),
    Route("POST", "/auth/reset-password", json={"token": "t" * 43, "password": "quiet-lantern-2"}),
    Route("GET", "/health"),
    Route("GET", "/ready"),
    Route("GET", "/metrics"),
]

# Out of the id column's range (a 404), then not numbers at all (a 422 or a 404).
IDS_OUT_OF_RANGE = ["0", "-1", str(2**31), str(2**63), str(2**64), "9" * 40]
IDS_NOT_NUMBERS = ["abc", "1.5", "1e3", "0x1", "\uff11", "NaN", quote("1 OR 1=1"), "%00"]
HOSTILE_TEXT = {
    "NUL": "a\u0000b",
    "lone surrogate": "a\ud800b",
    "low surrogate": "\udfff",
    "C0 control": "a\u001bb",
    "C1 control": "a\u0085b",
    "DEL": "a\u007fb",
    "1 MB": "x" * 1_000_000,
    "blank": " \t ",
    "empty": "",
}
BAD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e309", "-1e309", "-1", "1e400", "10" + "0" * 400]
MALFORMED_BODIES = {
    "truncated": b'{"name": "x", "price": ',
    "empty": b"",
    "null": b"null",
    "array": b"[]",
    "string": b'"name"',
    "trailing comma": b'{"name": "x",}',
    "single quotes": b"{'name': 'x'}",
    "not UTF-8": b'{"name": "\xff\xfe"}',
    "lone byte": b"\x80",
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "NaN": b'{"name": "x", "price": NaN, "password": "quiet-lantern-1", "email": "q@example.com"}',
    "duplicate key": b'{"name": "x", "price": 1, "price": -1}',
}


async def _snapshot(api: Api) -> tuple[list[tuple[Any, ...]], ...]:
    """Every row of every table, in id order."""
    tables = []
    async with api.app.state.services.engine.connect() as connection:
        for table in ("users", "items", "sessions"):
            rows = await connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))  # noqa: S608
            tables.append([tuple(row) for row in rows])
    return tuple(tables)


@dataclass
class Checker:
    """Sends odd requests and notes every answer that breaks the rules, for one report."""

    api: Api
    problems: list[str] = field(default_factory=list)
    sent: int = 0

    async def check(
        self,
        label: str,
        send: Callable[[], Any],
        *,
        expect: set[int] | None = None,
        refused: bool = True,
    ) -> httpx.Response:
        before = await _snapshot(self.api)
        response: httpx.Response = await send()
        self.sent += 1
        status = response.status_code
        if status >= 500:
            self.problems.append(f"{label}: {status} {response.text[:200]}")
        elif expect is not None and status not in expect:
            self.problems.append(
                f"{label}: {status}, expected {sorted(expect)}: {response.text[:200]}"
            )
        elif refused and not 400 <= status < 500:
            self.problems.append(f"{label}: {status}, expected a refusal: {response.text[:200]}")
        if 400 <= status < 500:
            if not response.headers.get("content-type", "").startswith("application/json"):
                self.problems.append(f"{label}: {status} is not JSON: {response.text[:80]!r}")
            elif "detail" not in response.json():
                self.problems.append(f"{label}: {status} has no detail: {response.text[:200]}")
            if await _snapshot(self.api) != before:
                self.problems.append(f"{label}: refused with {status}, yet the tables changed")
        return response


@dataclass
class World:
    admin: Account
    victim: Account
    item: dict[str, Any]

    @property
    def victim_session(self) -> str:
        session_id: str = jwt.decode(self.victim.token, options={"verify_signature": False})["sid"]
        return session_id


@pytest.fixture
async def world(api: Api) -> World:
    admin = await api.user(admin=True, name="Admin")
    body = await api.sign_up(email=LOGIN["username"], password=LOGIN["password"], name="Victim")
    token = (await api.login(LOGIN["username"], LOGIN["password"])).json()["access_token"]
    victim = Account(body["id"], LOGIN["username"], LOGIN["password"], token)
    item = await api.item(victim, name="Lamp", price=5)
    return World(admin, victim, item)


def _url(route: Route, world: World, **ids: str) -> str:
    values = {
        "user_id": str(world.victim.id),
        "item_id": str(world.item["id"]),
        "session_id": world.victim_session,
    } | ids
    return route.path.format(**values)


def _request(
    api: Api,
    route: Route,
    world: World,
    *,
    url: str | None = None,
    json_body: Any = None,
    form: Any = None,
    query: dict[str, Any] | None = None,
    content: bytes | AsyncIterator[bytes] | None = None,
    content_type: str | None = None,
) -> Callable[[], Any]:
    headers = dict(world.admin.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    if json_body is not None:
        # Escapes lone surrogates, as a client's JSON encoder would.
        content = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    return lambda: api.client.request(
        route.method,
        url or _url(route, world),
        params=route.query if query is None else query,
        data=form,
        content=content,
        headers=headers,
    )


def test_every_documented_operation_is_covered() -> None:
    openapi = create_app(Settings(database_url="sqlite+aiosqlite://", secret_key=SECRET)).openapi()
    documented = {f"{m.upper()} {p}" for p, ops in openapi["paths"].items() for m in ops}
    assert documented == {str(route) for route in ROUTES}


@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_odd_input_is_refused_and_changes_nothing(
    api: Api, world: World, route: Route
) -> None:
    checker = Checker(api)
    check = checker.check

    if route.id_name:
        for bad in IDS_OUT_OF_RANGE:
            url = _url(route, world, **{route.id_name: bad})
            await check(f"id {bad}", _request(api, route, world, url=url), expect={404})
        for bad in IDS_NOT_NUMBERS:
            url = _url(route, world, **{route.id_name: bad})
            await check(f"id {bad!r}", _request(api, route, world, url=url), expect={404, 422})

    text_fields = [k for k, v in (route.json or route.form or {}).items() if isinstance(v, str)]
    for name in text_fields:
        for what, value in HOSTILE_TEXT.items():
            if route.form is not None:
                if "surrogate" in what:
                    continue  # not encodable in a form; sent raw below
                form = route.form | {name: value}
                await check(f"{name} {what}", _request(api, route, world, form=form))
            else:
                body = (route.json or {}) | {name: value}
                await check(f"{name} {what}", _request(api, route, world, json_body=body))
    for name in [k for k, v in route.query.items() if isinstance(v, str)]:
        for what, value in HOSTILE_TEXT.items():
            if what in ("lone surrogate", "low surrogate", "1 MB"):
                continue  # not encodable in a URL; sent raw below
            query = route.query | {name: value}
            # An empty search is no filter (SPEC §4), not a mistake.
            refused = not (name == "q" and what == "empty")
            request = _request(api, route, world, query=query)
            await check(f"query {name} {what}", request, refused=refused)
        # Starlette decodes a query leniently (U+FFFD for bytes that are not UTF-8).
        raw = f"{_url(route, world)}?{name}=%ED%A0%80"
        request = _request(api, route, world, url=raw, query={})
        await check(f"query {name} not UTF-8", request, refused=False)

    numeric = [
        k for k, v in {**route.query, **(route.json or {})}.items() if type(v) in (int, float)
    ]
    for name in numeric:
        for bad in BAD_NUMBERS:
            if route.json and name in route.json:
                raw = json.dumps(route.json | {name: 0}).replace(": 0", f": {bad}", 1)
                request = _request(
                    api, route, world, content=raw.encode(), content_type="application/json"
                )
                await check(f"{name} {bad[:10]}", request, expect={422})
            else:
                query = route.query | {name: bad}
                await check(f"query {name} {bad[:10]}", _request(api, route, world, query=query))

    if route.form is not None:
        for name in route.form:
            raw_form = f"{name}=%ED%A0%80&" + "&".join(
                f"{k}={v}" for k, v in route.form.items() if k != name
            )
            request = _request(
                api,
                route,
                world,
                content=raw_form.encode(),
                content_type="application/x-www-form-urlencoded",
            )
            await check(f"form {name} not UTF-8", request)

    if route.has_body:
        for what, raw_body in MALFORMED_BODIES.items():
            content_type = "application/json" if route.json else "multipart/form-data; boundary=x"
            request = _request(api, route, world, content=raw_body, content_type=content_type)
            await check(f"body {what}", request)
        valid = json.dumps(route.json or route.form).encode()
        for wrong_type in ("text/plain", "application/x-www-form-urlencoded", None):
            if route.form is not None and wrong_type == "application/x-www-form-urlencoded":
                continue
            request = _request(api, route, world, content=valid, content_type=wrong_type)
            await check(f"content type {wrong_type}", request)

    big = b'{"name": "' + b"x" * (2 * MiB) + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    big_type = "application/x-www-form-urlencoded" if route.form else "application/json"
    for how, content in (("with Content-Length", big), ("chunked", None)):
        request = _request(api, route, world, content=content or chunks(), content_type=big_type)
        # A route that reads no body may ignore a streamed one; one that does refuses it.
        expect = {413} if route.has_body or how == "with Content-Length" else None
        await check(f"2 MiB body {how}", request, expect=expect, refused=expect is not None)

    assert checker.problems == [], f"{len(checker.problems)} of {checker.sent} went wrong"


ROUND_TRIP = {
    "emoji": "🌸🎉",
    "emoji sequences": "👩🏽‍💻 🇫🇷 ❤️ 1️⃣",
    "Arabic": "زهرة الربيع",
    "Hebrew with points": "שָׁלוֹם",
    "CJK": "花子 漢字テスト 한국어",
    "combining marks stay apart": "Zoe\u0308 Zoë",
    "astral letters": "\U0001d518\U0001d52b\U0001d526\U0001d520",
    "zero-width joiner in an emoji": "\U0001f469\u200d\U0001f4bb",
    "changes length when lower-cased": "İstanbul ǅ",
    "100 astral characters": "🌸" * 100,
    "SQL and HTML": "'; DROP TABLE items; -- <b>&amp;</b> 50% _x_ \\",
}


@pytest.mark.parametrize("name", ROUND_TRIP.values(), ids=list(ROUND_TRIP))
async def test_allowed_text_round_trips_exactly(api: Api, name: str) -> None:
    owner = await api.user(name=name)
    me = await api.client.get("/users/me", headers=owner.headers)
    assert me.json()["name"] == name
    item = await api.item(owner, name=name)
    assert item["name"] == name
    read = await api.client.get(f"/items/{item['id']}")
    assert read.json()["name"] == name
    assert await api.sql("SELECT name FROM items WHERE id = :id", id=item["id"]) == name
    assert await api.sql("SELECT name FROM users WHERE id = :id", id=owner.id) == name
    found = await api.client.get("/items/", params={"q": name})
    assert [row["id"] for row in found.json()] == [item["id"]]
    renamed = await api.client.patch(
        f"/items/{item['id']}", json={"name": name[::-1]}, headers=owner.headers
    )
    assert renamed.json()["name"] == name[::-1].strip()


@pytest.mark.parametrize("username", ["victim@example.com\x00", "\x00", "a\x00@example.com"])
async def test_a_login_email_with_a_nul_is_a_401(api: Api, world: World, username: str) -> None:
    response = await api.login(username, LOGIN["password"])
    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect email or password"}
