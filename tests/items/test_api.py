"""Items: listing, reading, changing and removing them, and who may do which."""

from __future__ import annotations

import asyncio

import pytest

from tests.factories import Api


async def test_create_an_item(api: Api) -> None:
    owner = await api.user()
    response = await api.client.post(
        "/items/", json={"name": " Brass lamp ", "price": 12.5}, headers=owner.headers
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "price", "owner_id", "created_at"}
    assert body["name"] == "Brass lamp"
    assert body["price"] == 12.5
    assert body["owner_id"] == owner.id
    assert response.headers["location"] == f"http://test/items/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert await api.count("items", "owner_id = :id", id=owner.id) == 1


async def test_anyone_reads_an_item_with_its_etag(api: Api) -> None:
    owner = await api.user()
    item = await api.item(owner, name="Chair", price=30)
    response = await api.client.get(f"/items/{item['id']}")
    assert response.status_code == 200
    assert response.json() == item
    assert response.headers["etag"] == '"1"'


async def test_creating_needs_a_token(api: Api) -> None:
    response = await api.client.post("/items/", json={"name": "Chair", "price": 3})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert await api.count("items") == 0


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "x", "price": NaN}',
        '{"name": "x", "price": Infinity}',
        '{"name": "x", "price": -Infinity}',
        '{"name": "x", "price": -0.01}',
        '{"name": "x", "price": 1000000000000.01}',
        '{"name": "x", "price": 1e309}',
        '{"name": "x", "price": "cheap"}',
        '{"name": "", "price": 1}',
        '{"name": "x"}',
        '{"name": "x", "price": 1, "owner_id": 1}',
        '{"name": "a\\u0000b", "price": 1}',
        '{"name": "\\udc00", "price": 1}',
    ],
)
async def test_bad_items_are_422_and_change_nothing(api: Api, body: str) -> None:
    owner = await api.user()
    response = await api.client.post(
        "/items/",
        content=body,
        headers=owner.headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)
    assert await api.count("items") == 0


async def test_the_largest_price_is_accepted(api: Api) -> None:
    owner = await api.user()
    item = await api.item(owner, price=1e12)
    assert item["price"] == 1e12


EXPECTED_WRITE = {"anonymous": 401, "other": 403, "owner": 200, "admin": 200}


@pytest.mark.parametrize("caller", list(EXPECTED_WRITE))
async def test_who_may_change_an_item(api: Api, caller: str) -> None:
    owner, other, admin = await api.user(), await api.user(), await api.user(admin=True)
    item = await api.item(owner, name="Old name")
    headers = {"owner": owner.headers, "other": other.headers, "admin": admin.headers}.get(
        caller, {}
    )
    response = await api.client.patch(
        f"/items/{item['id']}", json={"name": "New name"}, headers=headers
    )
    assert response.status_code == EXPECTED_WRITE[caller]
    name = await api.sql("SELECT name FROM items WHERE id = :id", id=item["id"])
    assert name == ("New name" if response.status_code == 200 else "Old name")
    if response.status_code == 200:
        assert response.headers["etag"] == '"2"'
        assert response.json()["owner_id"] == owner.id


@pytest.mark.parametrize("caller", list(EXPECTED_WRITE))
async def test_who_may_delete_an_item(api: Api, caller: str) -> None:
    owner, other, admin = await api.user(), await api.user(), await api.user(admin=True)
    item = await api.item(owner)
    headers = {"owner": owner.headers, "other": other.headers, "admin": admin.headers}.get(
        caller, {}
    )
    response = await api.client.delete(f"/items/{item['id']}", headers=headers)
    expected = {**EXPECTED_WRITE, "owner": 204, "admin": 204}[caller]
    assert response.status_code == expected
    assert await api.count("items") == (0 if expected == 204 else 1)


@pytest.mark.parametrize("item_id", ["0", "-1", str(2**31), str(2**63), str(2**64), "999999"])
async def test_missing_or_impossible_item_ids_are_404(api: Api, item_id: str) -> None:
    owner = await api.user()
    assert (await api.client.get(f"/items/{item_id}")).status_code == 404
    patch = await api.client.patch(f"/items/{item_id}", json={"name": "x"}, headers=owner.headers)
    assert patch.status_code == 404
    assert (await api.client.delete(f"/items/{item_id}", headers=owner.headers)).status_code == 404


async def test_patch_changes_only_what_it_names(api: Api) -> None:
    owner = await api.user()
    item = await api.item(owner, name="Desk", price=80)
    response = await api.client.patch(
        f"/items/{item['id']}", json={"price": 75}, headers=owner.headers
    )
    assert response.status_code == 200
    assert response.json() | {"price": 80} == item
    assert response.json()["price"] == 75


@pytest.mark.parametrize(
    "body", ['{"price": null}', '{"price": Infinity}', '{"owner_id": 2}', '{"price": -1}', "[]"]
)
async def test_bad_patches_are_422(api: Api, body: str) -> None:
    owner = await api.user()
    item = await api.item(owner, price=5)
    response = await api.client.patch(
        f"/items/{item['id']}",
        content=body,
        headers=owner.headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert await api.sql("SELECT version FROM items WHERE id = :id", id=item["id"]) == 1


async def test_if_match_with_the_current_etag_applies(api: Api) -> None:
    owner = await api.user()
    item = await api.item(owner)
    etag = (await api.client.get(f"/items/{item['id']}")).headers["etag"]
    response = await api.client.patch(
        f"/items/{item['id']}", json={"price": 1}, headers=owner.headers | {"If-Match": etag}
    )
    assert response.status_code == 200
    assert response.headers["etag"] == '"2"'


async def test_a_patch_that_changes_nothing_keeps_the_version(api: Api) -> None:
    """RFC 9110: the tag follows the representation, which a no-op leaves as it was."""
    owner = await api.user()
    item = await api.item(owner, name="Lamp", price=5)
    response = await api.client.patch(
        f"/items/{item['id']}",
        json={"name": "Lamp", "price": 5},
        headers=owner.headers | {"If-Match": '"1"'},
    )
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    assert response.json() == item
    assert await api.sql("SELECT version FROM items WHERE id = :id", id=item["id"]) == 1


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
async def test_if_match_with_an_old_etag_is_412_and_changes_nothing(api: Api, method: str) -> None:
    owner = await api.user()
    item = await api.item(owner, price=5)
    await api.client.patch(f"/items/{item['id']}", json={"price": 6}, headers=owner.headers)
    response = await api.client.request(
        method,
        f"/items/{item['id']}",
        json={"price": 7} if method == "PATCH" else None,
        headers=owner.headers | {"If-Match": '"1"'},
    )
    assert response.status_code == 412
    assert await api.sql("SELECT price FROM items WHERE id = :id", id=item["id"]) == 6
    assert await api.sql("SELECT version FROM items WHERE id = :id", id=item["id"]) == 2


async def test_concurrent_patches_of_one_version_let_exactly_one_through(api: Api) -> None:
    owner = await api.user()
    item = await api.item(owner, price=1)

    async def patch(n: int) -> int:
        # Every patch is a real change: a no-op (the item's own price) moves no version, so a
        # second writer at version 1 would rightly win too (see the no-op test below).
        response = await api.client.patch(
            f"/items/{item['id']}",
            json={"price": 100 + n},
            headers=owner.headers | {"If-Match": '"1"'},
        )
        return response.status_code

    statuses = await asyncio.gather(*(patch(n) for n in range(20)))
    assert sorted(statuses) == [200] + [412] * 19
    assert await api.sql("SELECT version FROM items WHERE id = :id", id=item["id"]) == 2


async def test_concurrent_patches_without_if_match_all_succeed(api: Api) -> None:
    owner = await api.user()
    item = await api.item(owner, price=1)

    async def patch(n: int) -> int:
        response = await api.client.patch(
            f"/items/{item['id']}", json={"price": 100 + n}, headers=owner.headers
        )
        return response.status_code

    statuses = await asyncio.gather(*(patch(n) for n in range(20)))
    assert statuses == [200] * 20
    assert await api.sql("SELECT version FROM items WHERE id = :id", id=item["id"]) == 21


async def test_user_items_lists_only_theirs_and_404s_for_unknown_users(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    mine = [await api.item(alice, name=f"A{n}") for n in range(3)]
    await api.item(bob, name="B")
    response = await api.client.get(f"/users/{alice.id}/items")
    assert response.status_code == 200
    assert response.json() == mine
    assert (await api.client.get("/users/999999/items")).status_code == 404


async def test_deleting_a_user_cascades_to_their_items(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    for n in range(3):
        await api.item(alice, name=f"A{n}")
    await api.item(bob)
    response = await api.client.delete(f"/users/{alice.id}", headers=alice.headers)
    assert response.status_code == 204
    assert await api.count("items", "owner_id = :id", id=alice.id) == 0
    assert await api.count("items") == 1


async def test_links_name_the_public_url_whatever_host_the_request_names(api: Api) -> None:
    owner = await api.user()
    evil = {"Host": "evil.example"}
    created = await api.client.post(
        "/items/", json={"name": "Lamp", "price": 1}, headers=owner.headers | evil
    )
    assert created.headers["location"] == f"http://test/items/{created.json()['id']}"
    await api.item(owner)
    listed = await api.client.get("/items/", params={"limit": 1}, headers=evil)
    assert listed.headers["link"].startswith("<http://test/items?limit=1&cursor=")
