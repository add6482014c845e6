"""A method a resource does not have is a 405 whose `Allow` lists the methods it has."""

from __future__ import annotations

import pytest

from tests.factories import Api


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_users_me_is_not_taken_for_a_user_id(api: Api, method: str) -> None:
    user = await api.user()
    response = await api.client.request(method, "/users/me", headers=user.headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH"
    assert await api.count("users") == 1


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/users", "GET, POST"),
        ("/users/me", "GET, PATCH"),
        ("/users/1", "DELETE, GET, PATCH, PUT"),
        ("/users/1/items", "GET"),
        ("/items", "GET, POST"),
        ("/items/1", "DELETE, GET, PATCH"),
        ("/auth/token", "POST"),
        ("/health", "GET"),
    ],
)
@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "PUT", "POST", "DELETE"])
async def test_allow_lists_every_method_of_the_resource(
    api: Api, path: str, allow: str, method: str
) -> None:
    if method in allow.split(", "):
        return
    response = await api.client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {"detail": "Method Not Allowed"}
