"""`/admin` behind an https public URL: the cookie is `Secure`; and the sign-in throttle."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import pytest

from bazaar.admin.auth import COOKIE
from tests.factories import Api

PUBLIC = "https://bazaar.example"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"public_url": PUBLIC, "limit_login_pair": "3/15 minutes"}


async def test_the_cookie_is_secure_when_the_public_url_is_https(api: Api) -> None:
    admin = await api.user(admin=True)
    response = await api.client.post(
        "/admin/login",
        data={"username": admin.email, "password": admin.password},
        headers={"Origin": PUBLIC},
    )
    assert response.status_code == 302
    cookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    assert cookie[COOKIE]["secure"] is True
    # The public origin is the only one: the test client's own is foreign here.
    refused = await api.client.post(
        "/admin/login",
        data={"username": admin.email, "password": admin.password},
        headers={"Origin": "http://test"},
    )
    assert refused.status_code == 403


async def test_sign_in_shares_the_apis_throttle(api: Api) -> None:
    admin = await api.user(admin=True)
    wrong = {"username": admin.email, "password": "not-the-password"}
    for _ in range(2):
        response = await api.client.post("/admin/login", data=wrong, headers={"Origin": PUBLIC})
        assert response.status_code == 400
    # The API's failure counts too: the third of 3 allowed.
    assert (await api.login(admin.email, "not-the-password")).status_code == 401
    throttled = await api.client.post(
        "/admin/login",
        data={"username": admin.email, "password": admin.password},
        headers={"Origin": PUBLIC},
    )
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert "set-cookie" not in throttled.headers
