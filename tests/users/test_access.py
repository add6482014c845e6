"""Who may do what on /users: every route for every kind of caller, and what it changed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import Account, Api

CALLERS = ["anonymous", "other", "self", "admin", "deactivated"]


@dataclass
class World:
    target: Account
    other: Account
    admin: Account

    def headers(self, caller: str) -> dict[str, str]:
        account = {"other": self.other, "self": self.target, "admin": self.admin}.get(caller)
        if caller == "deactivated":
            account = self.target
        return account.headers if account else {}


async def _world(api: Api, caller: str) -> World:
    world = World(
        await api.user(name="Target"), await api.user(name="Other"), await api.user(admin=True)
    )
    if caller == "deactivated":
        await api.sql("UPDATE users SET is_active = false WHERE id = :id", id=world.target.id)
    return world


async def _target_field(api: Api, world: World, column: str) -> object:
    return await api.sql(f"SELECT {column} FROM users WHERE id = :id", id=world.target.id)  # noqa: S608


EXPECTED_READ = {"anonymous": 401, "other": 403, "self": 200, "admin": 200, "deactivated": 401}
EXPECTED_DELETE = {"anonymous": 401, "other": 403, "self": 204, "admin": 204, "deactivated": 401}


@pytest.mark.parametrize("caller", CALLERS)
async def test_list_users_is_for_admins(api: Api, caller: str) -> None:
    world = await _world(api, caller)
    response = await api.client.get("/users/", headers=world.headers(caller))
    expected = {"anonymous": 401, "other": 403, "self": 403, "admin": 200, "deactivated": 401}
    assert response.status_code == expected[caller]
    if response.status_code == 200:
        assert [u["id"] for u in response.json()] == [
            world.target.id,
            world.other.id,
            world.admin.id,
        ]
        assert all("hashed_password" not in u for u in response.json())


@pytest.mark.parametrize("caller", CALLERS)
async def test_read_a_user(api: Api, caller: str) -> None:
    world = await _world(api, caller)
    response = await api.client.get(f"/users/{world.target.id}", headers=world.headers(caller))
    assert response.status_code == EXPECTED_READ[caller]
    if response.status_code == 200:
        assert response.json()["email"] == world.target.email


@pytest.mark.parametrize("caller", CALLERS)
async def test_rename_a_user_with_put(api: Api, caller: str) -> None:
    world = await _world(api, caller)
    response = await api.client.put(
        f"/users/{world.target.id}", params={"name": "Renamed"}, headers=world.headers(caller)
    )
    assert response.status_code == EXPECTED_READ[caller]
    renamed = response.status_code == 200
    assert await _target_field(api, world, "name") == ("Renamed" if renamed else "Target")
    if renamed:
        assert response.json()["name"] == "Renamed"


@pytest.mark.parametrize("caller", CALLERS)
async def test_patch_a_users_name(api: Api, caller: str) -> None:
    world = await _world(api, caller)
    response = await api.client.patch(
        f"/users/{world.target.id}", json={"name": "Patched"}, headers=world.headers(caller)
    )
    assert response.status_code == EXPECTED_READ[caller]
    patched = response.status_code == 200
    assert await _target_field(api, world, "name") == ("Patched" if patched else "Target")


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("field", ["is_admin", "is_active"])
async def test_only_admins_change_roles_and_activity(api: Api, caller: str, field: str) -> None:
    world = await _world(api, caller)
    before = await _target_field(api, world, field)
    new_value = not bool(before)
    response = await api.client.patch(
        f"/users/{world.target.id}", json={field: new_value}, headers=world.headers(caller)
    )
    expected = {"anonymous": 401, "other": 403, "self": 403, "admin": 200, "deactivated": 401}
    assert response.status_code == expected[caller]
    after = await _target_field(api, world, field)
    assert bool(after) == (new_value if caller == "admin" else bool(before))


@pytest.mark.parametrize("caller", CALLERS)
async def test_delete_a_user_and_their_items(api: Api, caller: str) -> None:
    world = await _world(api, caller)
    if caller != "deactivated":
        await api.item(world.target)
    else:
        await api.sql(
            "INSERT INTO items (name, price, owner_id, version) VALUES ('x', 1, :id, 1)",
            id=world.target.id,
        )
    response = await api.client.delete(f"/users/{world.target.id}", headers=world.headers(caller))
    assert response.status_code == EXPECTED_DELETE[caller]
    deleted = response.status_code == 204
    assert await api.count("users", "id = :id", id=world.target.id) == (0 if deleted else 1)
    assert await api.count("items", "owner_id = :id", id=world.target.id) == (0 if deleted else 1)
    assert await api.count("users") == (2 if deleted else 3)


async def test_me_routes_need_an_active_user(api: Api) -> None:
    user = await api.user()
    assert (await api.client.get("/users/me")).status_code == 401
    assert (await api.client.patch("/users/me", json={"name": "X"})).status_code == 401
    response = await api.client.patch("/users/me", json={"name": "Me Myself"}, headers=user.headers)
    assert response.status_code == 200
    assert response.json()["name"] == "Me Myself"


async def test_me_cannot_grant_itself_admin(api: Api) -> None:
    user = await api.user()
    response = await api.client.patch("/users/me", json={"is_admin": True}, headers=user.headers)
    assert response.status_code == 422
    assert await api.count("users", "is_admin = true") == 0


@pytest.mark.parametrize("path", ["/users/me", "/users/{id}"])
async def test_changing_ones_own_password_needs_the_current_one(api: Api, path: str) -> None:
    user = await api.user()
    url = path.format(id=user.id)
    for body in (
        {"password": "new-password"},
        {"password": "new-password", "current_password": "wrong-password"},
    ):
        response = await api.client.patch(url, json=body, headers=user.headers)
        assert response.status_code == 403
        assert (await api.login(user.email, user.password)).status_code == 200
    response = await api.client.patch(
        url,
        json={"password": "new-password", "current_password": user.password},
        headers=user.headers,
    )
    assert response.status_code == 200
    assert (await api.login(user.email, "new-password")).status_code == 200


async def test_an_admin_resets_another_users_password_without_the_current_one(api: Api) -> None:
    admin, user = await api.user(admin=True), await api.user()
    response = await api.client.patch(
        f"/users/{user.id}", json={"password": "reset-by-admin"}, headers=admin.headers
    )
    assert response.status_code == 200
    assert (await api.login(user.email, "reset-by-admin")).status_code == 200
    assert (await api.login(user.email, user.password)).status_code == 401


async def test_changing_email_to_one_in_use_is_400(api: Api) -> None:
    first, second = await api.user(), await api.user()
    response = await api.client.patch(
        "/users/me",
        json={"email": first.email.upper(), "current_password": second.password},
        headers=second.headers,
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Email already in use"}
    assert await api.count("users", "email = :e", e=first.email) == 1


async def test_changing_email_normalises_it(api: Api) -> None:
    user = await api.user()
    response = await api.client.patch(
        "/users/me",
        json={"email": "  New.Address@Example.COM", "current_password": user.password},
        headers=user.headers,
    )
    assert response.status_code == 200
    assert response.json()["email"] == "new.address@example.com"


@pytest.mark.parametrize("user_id", ["0", "-1", str(2**31), str(2**63), str(2**64)])
async def test_ids_outside_the_column_range_are_404(api: Api, user_id: str) -> None:
    admin = await api.user(admin=True)
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = await api.client.request(
            method,
            f"/users/{user_id}",
            params={"name": "X"} if method == "PUT" else None,
            json={"name": "X"} if method == "PATCH" else None,
            headers=admin.headers,
        )
        assert response.status_code == 404, method
    response = await api.client.get(f"/users/{user_id}/items")
    assert response.status_code == 404


async def test_an_unknown_id_is_404_for_admins_and_403_for_others(api: Api) -> None:
    admin, user = await api.user(admin=True), await api.user()
    assert (await api.client.get("/users/999999", headers=admin.headers)).status_code == 404
    # A non-admin learns nothing about which ids exist.
    assert (await api.client.get("/users/999999", headers=user.headers)).status_code == 403


async def test_non_numeric_ids_are_422(api: Api) -> None:
    admin = await api.user(admin=True)
    assert (await api.client.get("/users/abc", headers=admin.headers)).status_code == 422


@pytest.mark.parametrize("body", [{"name": None}, {"email": None}, {"unknown": 1}, {"name": ""}])
async def test_bad_patches_are_422_and_change_nothing(api: Api, body: dict[str, object]) -> None:
    user = await api.user(name="Unchanged")
    response = await api.client.patch(f"/users/{user.id}", json=body, headers=user.headers)
    assert response.status_code == 422
    assert await api.sql("SELECT name FROM users WHERE id = :id", id=user.id) == "Unchanged"
