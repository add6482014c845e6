"""Browsing items: filters, every sort order, and walking every page with keyset cursors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.factories import Account, Api

SORTS = ["id", "-id", "price", "-price", "name", "-name", "created_at", "-created_at"]
NAMES = [
    "lamp",
    "Chair",
    "desk",
    "Lamp shade",
    "rug",
    "100% wool rug",
    "under_score",
    "clock",
    "either/or",
]


async def _seed(api: Api, owner: Account, count: int, *, start: int = 0) -> None:
    """`count` items with repeating prices, names and times, so that every sort has ties."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    await api.insert_items(
        [
            {
                "name": NAMES[n % len(NAMES)],
                "price": float(n % 7) * 2.5,
                "owner_id": owner.id,
                "created_at": base + timedelta(seconds=n % 5, microseconds=n % 3),
            }
            for n in range(start, start + count)
        ]
    )


def _key(item: dict[str, Any], sort: str) -> tuple[Any, int]:
    field = sort.lstrip("-")
    value = item[field]
    if field == "created_at":
        value = datetime.fromisoformat(value)
    return (value, item["id"])


def _next_url(response: httpx.Response) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert match, link
    return match.group(1)


async def _walk(api: Api, url: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        response = await api.client.get(next_url)
        assert response.status_code == 200, response.text
        seen.extend(response.json())
        next_url = _next_url(response)
    return seen


async def test_the_default_list_is_in_id_order_with_the_tutorials_skip_and_limit(api: Api) -> None:
    owner = await api.user()
    await _seed(api, owner, 12)
    everything = (await api.client.get("/items/")).json()
    assert [item["id"] for item in everything] == sorted(item["id"] for item in everything)
    assert len(everything) == 12
    page = await api.client.get("/items/", params={"skip": 3, "limit": 4})
    assert page.json() == everything[3:7]
    assert "cursor=" in (_next_url(page) or "")


@pytest.mark.parametrize("sort", SORTS)
async def test_every_sort_orders_ties_by_id(api: Api, sort: str, backend: str) -> None:
    owner = await api.user()
    await _seed(api, owner, 30)
    response = await api.client.get("/items/", params={"sort": sort})
    assert response.status_code == 200
    items = response.json()
    assert len(items) == 30
    keys = [_key(item, sort) for item in items]
    if sort.lstrip("-") == "name" and backend == "postgres":
        # PostgreSQL orders text by the column's collation (the database's), which Python
        # cannot reproduce: PostgreSQL itself sorts the same (name, id) pairs, outside the
        # API's query, with ties by id in the same direction.
        direction = "DESC" if sort.startswith("-") else "ASC"
        expected = await api.sql(
            f"SELECT array_agg(id ORDER BY name {direction}, id {direction}) "  # noqa: S608
            "FROM unnest(CAST(:names AS text[]), CAST(:ids AS integer[])) AS t(name, id)",
            names=[item["name"] for item in items],
            ids=[item["id"] for item in items],
        )
        assert [item["id"] for item in items] == expected
        # The expectation itself is an order, not the input given back.
        assert expected != sorted(expected, reverse=sort.startswith("-"))
        return
    # SQLite compares text by code point (BINARY), as Python does.
    assert keys == sorted(keys, reverse=sort.startswith("-"))


@pytest.mark.parametrize("sort", SORTS)
async def test_walking_next_links_sees_every_row_once_despite_inserts(api: Api, sort: str) -> None:
    owner = await api.user()
    await _seed(api, owner, 40)
    first = await api.client.get("/items/", params={"sort": sort, "limit": 7})
    expected = (await api.client.get("/items/", params={"sort": sort, "limit": 1000})).json()
    seen = first.json()
    next_url = _next_url(first)
    pages = 1
    while next_url is not None:
        if pages == 2:
            # Rows arriving mid-walk must not shift what the reader sees next.
            await _seed(api, owner, 5, start=100)
        response = await api.client.get(next_url)
        assert response.status_code == 200
        seen.extend(response.json())
        next_url = _next_url(response)
        pages += 1
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)), "a row was shown twice"
    original_ids = {item["id"] for item in expected}
    assert original_ids <= set(ids), "a row that existed before the walk was skipped"
    assert pages >= 6  # 40 rows, 7 a page


async def test_filters_combine(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    await _seed(api, alice, 16)
    await _seed(api, bob, 8)
    response = await api.client.get(
        "/items/",
        params={"owner_id": alice.id, "min_price": 5, "max_price": 10, "q": "LAMP"},
    )
    assert response.status_code == 200
    items = response.json()
    assert items
    for item in items:
        assert item["owner_id"] == alice.id
        assert 5 <= item["price"] <= 10
        assert "lamp" in item["name"].lower()
    everything = await _walk(api, "/items/?limit=5")
    expected = [
        i
        for i in everything
        if i["owner_id"] == alice.id and 5 <= i["price"] <= 10 and "lamp" in i["name"].lower()
    ]
    assert items == expected


@pytest.mark.parametrize(
    ("q", "names"), [("%", {"100% wool rug"}), ("_", {"under_score"}), ("r/o", {"either/or"})]
)
async def test_wildcards_and_the_escape_are_literal_in_q(api: Api, q: str, names: set[str]) -> None:
    owner = await api.user()
    await _seed(api, owner, len(NAMES))
    response = await api.client.get("/items/", params={"q": q})
    assert {item["name"] for item in response.json()} == names


async def test_next_links_keep_the_filters(api: Api) -> None:
    owner = await api.user()
    await _seed(api, owner, 30)
    seen = await _walk(api, "/items/?limit=2&sort=-price&min_price=5")
    assert seen
    assert all(item["price"] >= 5 for item in seen)
    assert len(seen) == sum(1 for n in range(30) if (n % 7) * 2.5 >= 5)


async def test_a_next_link_replaces_skip_and_the_cursor_and_keeps_the_rest(api: Api) -> None:
    owner = await api.user()
    await _seed(api, owner, 12)
    params = {"sort": "-id", "min_price": "0", "limit": "3"}
    first = await api.client.get("/items/", params={"skip": "2", **params})
    second_url = _next_url(first)
    assert second_url is not None
    second = await api.client.get(second_url)
    third_url = _next_url(second)
    assert third_url is not None
    for url in (second_url, third_url):
        query = parse_qs(urlsplit(url).query)
        assert len(query.pop("cursor")) == 1
        assert query == {name: [value] for name, value in params.items()}
    both = await api.client.get("/items/", params={"skip": "2", **params, "limit": "6"})
    assert first.json() + second.json() == both.json()


async def test_user_items_and_users_lists_page_the_same_way(api: Api) -> None:
    admin = await api.user(admin=True)
    for _ in range(4):
        await api.user()
    owner = await api.user()
    await _seed(api, owner, 9)
    items = await _walk(api, f"/users/{owner.id}/items?limit=2&sort=price")
    assert len(items) == 9
    response = await api.client.get("/users/", params={"limit": 2}, headers=admin.headers)
    users: list[dict[str, Any]] = response.json()
    next_url = _next_url(response)
    while next_url:
        response = await api.client.get(next_url, headers=admin.headers)
        users.extend(response.json())
        next_url = _next_url(response)
    assert [user["id"] for user in users] == sorted(user["id"] for user in users)
    assert len(users) == 6


@pytest.mark.parametrize(
    "tamper",
    ["flip", "garbage", "other sort", "other list", "truncate", "empty"],
)
async def test_tampered_or_foreign_cursors_are_422(api: Api, tamper: str) -> None:
    admin = await api.user(admin=True)
    await api.user()
    await _seed(api, admin, 10)
    page = await api.client.get("/items/", params={"limit": 3, "sort": "price"})
    cursor = re.search(r"cursor=([^&>]+)", page.headers["link"])
    assert cursor
    token = httpx.QueryParams(f"cursor={cursor.group(1)}")["cursor"]
    users_page = await api.client.get("/users/", params={"limit": 1}, headers=admin.headers)
    users_cursor = httpx.QueryParams(_next_url(users_page).split("?", 1)[1])["cursor"]  # type: ignore[union-attr]
    params = {"limit": "3", "sort": "price"}
    url = "/items/"
    if tamper == "flip":
        params["cursor"] = ("A" if token[0] != "A" else "B") + token[1:]
    elif tamper == "garbage":
        params["cursor"] = "%%%not-a-cursor"
    elif tamper == "other sort":
        params["cursor"], params["sort"] = token, "-price"
    elif tamper == "other list":
        params["cursor"] = users_cursor
    elif tamper == "truncate":
        params["cursor"] = token[:-3]
    else:
        params["cursor"] = ""
    response = await api.client.get(url, params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "owner"},
        {"limit": "0"},
        {"limit": "1001"},
        {"skip": "-1"},
        {"min_price": "nan"},
        {"max_price": "inf"},
        {"min_price": "-1"},
        {"owner_id": str(2**63)},
        {"q": "a\x00b"},
        {"q": "x" * 101},
    ],
)
async def test_bad_list_parameters_are_422(api: Api, params: dict[str, str]) -> None:
    response = await api.client.get("/items/", params=params)
    assert response.status_code == 422


@pytest.mark.parametrize("sort", ["created_at", "-created_at"])
async def test_server_stamped_times_page_correctly(api: Api, sort: str) -> None:
    owner = await api.user()
    created = [await api.item(owner, name=f"n{n}") for n in range(5)]
    seen = await _walk(api, f"/items/?limit=2&sort={sort}")
    assert sorted(item["id"] for item in seen) == [item["id"] for item in created]
    keys = [_key(item, sort) for item in seen]
    assert keys == sorted(keys, reverse=sort.startswith("-"))


@pytest.mark.parametrize("sort", ["name", "-name"])
async def test_cursors_of_the_longest_names_are_accepted_back(api: Api, sort: str) -> None:
    """Names of 100 emoji (the longest a name can be, in UTF-8): every next link works."""
    owner = await api.user()
    names = ["\U0001f600" * 100, "\U0001f469\u200d\U0001f4bb" * 33 + "!", "\U0001f984" * 100]
    expected = [await api.item(owner, name=name) for name in names]
    seen = await _walk(api, f"/items/?sort={sort}&limit=1")
    assert sorted(seen, key=lambda item: _key(item, sort)) == sorted(
        expected, key=lambda item: _key(item, sort)
    )
    assert len(seen) == 3


@pytest.mark.parametrize("q", ["", " ", "   "])
async def test_an_empty_search_is_no_filter(api: Api, q: str) -> None:
    owner = await api.user()
    items = [await api.item(owner, name=name) for name in ("Lamp", "Rug")]
    response = await api.client.get("/items/", params={"q": q})
    assert response.status_code == 200
    assert response.json() == items
