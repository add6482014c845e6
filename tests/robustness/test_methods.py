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
