"""A 422 says which field is wrong without echoing a password or token it was sent."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import Api

SECRET = "hunter2-secret-5b0c"


def _fields(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [error["loc"] for error in response.json()["detail"]]


async def test_a_too_long_password_is_not_echoed(api: Api) -> None:
    password = SECRET + "x" * (200 - len(SECRET))
    body = {"name": "Ann", "email": "ann@example.com", "password": password}
    response = await api.client.post("/users/", json=body)
    assert _fields(response) == [["body", "password"]]
    assert SECRET not in response.text
    assert "at most 128 characters" in response.text
    assert await api.count("users") == 0


async def test_a_missing_field_shows_the_body_without_its_password(api: Api) -> None:
    body = {"email": "ann@example.com", "password": SECRET}
    response = await api.client.post("/users/", json=body)
    assert _fields(response) == [["body", "name"]]
    assert SECRET not in response.text
    # The body is shown with the password masked: it was sent, and the name was not.
    assert response.json()["detail"][0]["input"] == {
        "email": "ann@example.com",
        "password": "********",
    }


async def test_a_login_form_without_username_does_not_echo_the_password(api: Api) -> None:
    response = await api.client.post("/auth/token", data={"password": SECRET})
    assert ["body", "username"] in _fields(response)
    assert SECRET not in response.text


async def test_a_too_long_current_password_is_not_echoed(api: Api) -> None:
    user = await api.user()
    current = SECRET + "y" * 200
    response = await api.client.patch(
        "/users/me",
        json={"password": "a-new-password-1", "current_password": current},
        headers=user.headers,
    )
    assert _fields(response) == [["body", "current_password"]]
    assert SECRET not in response.text
    assert (await api.login(user.email, user.password)).status_code == 200


async def test_an_unknown_field_next_to_a_password_echoes_neither(api: Api) -> None:
    body = {"name": "Ann", "email": "ann@example.com", "password": "correct-horse-2"}
    # A client's near misses for a secret field's name are secret fields too.
    for field in ["new_password", "Password", "access_token"]:
        response = await api.client.post("/users/", json=body | {field: SECRET})
        assert _fields(response) == [["body", field]]
        assert "Extra inputs are not permitted" in response.text
        assert SECRET not in response.text
        assert "correct-horse-2" not in response.text
    response = await api.client.post("/users/", json=body | {"age": 42})
    assert _fields(response) == [["body", "age"]]
    assert "correct-horse-2" not in response.text
    assert await api.count("users") == 0
