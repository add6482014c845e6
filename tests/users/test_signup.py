"""Signing up: POST /users/."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from starlette.types import Message

from bazaar.fields import canonical_email
from tests.factories import Api


async def test_sign_up_returns_the_user_without_the_hash(api: Api) -> None:
    response = await api.client.post(
        "/users/",
        json={"name": "  Ada Lovelace ", "email": " Ada@Example.COM ", "password": "s3cret-pass"},
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "email",
        "is_active",
        "is_admin",
        "is_verified",
        "created_at",
    }
    assert body["name"] == "Ada Lovelace"
    assert body["email"] == "ada@example.com"
    assert body["is_active"] is True
    assert body["is_admin"] is False
    assert body["created_at"].endswith("Z") or "+00:00" in body["created_at"]
    assert response.headers["location"] == f"http://test/users/{body['id']}"
    stored = await api.sql("SELECT hashed_password FROM users WHERE id = :id", id=body["id"])
    assert stored.startswith("$argon2id$")
    assert "s3cret-pass" not in stored


async def test_path_works_without_trailing_slash_and_without_redirect(api: Api) -> None:
    response = await api.client.post(
        "/users", json={"name": "A", "email": "a@example.com", "password": "quiet-lantern-1"}
    )
    assert response.status_code == 201
    assert await api.count("users") == 1


@pytest.mark.parametrize("variant", ["dup@example.com", "DUP@example.com", " Dup@Example.com"])
async def test_duplicate_email_is_400_whatever_the_case(api: Api, variant: str) -> None:
    await api.sign_up(email="dup@example.com")
    response = await api.client.post(
        "/users/", json={"name": "B", "email": variant, "password": "quiet-lantern-1"}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Email already in use"}
    assert await api.count("users") == 1


async def test_racing_sign_ups_with_one_email_make_one_user(api: Api) -> None:
    emails = ["race@example.com", "RACE@example.com", "Race@Example.com"] * 4

    async def sign_up(email: str) -> int:
        response = await api.client.post(
            "/users/", json={"name": "R", "email": email, "password": "quiet-lantern-1"}
        )
        return response.status_code

    statuses = await asyncio.gather(*(sign_up(email) for email in emails))
    assert sorted(statuses) == [201] + [400] * (len(emails) - 1)
    assert await api.count("users") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "email": "a@example.com", "password": "quiet-lantern-1"}, "name"),
        ({"name": "   ", "email": "a@example.com", "password": "quiet-lantern-1"}, "name"),
        ({"name": "x" * 101, "email": "a@example.com", "password": "quiet-lantern-1"}, "name"),
        ({"name": "a\u0000b", "email": "a@example.com", "password": "quiet-lantern-1"}, "name"),
        ({"name": "A", "email": "not-an-email", "password": "quiet-lantern-1"}, "email"),
        (
            {"name": "A", "email": "a" * 190 + "@example.com", "password": "quiet-lantern-1"},
            "email",
        ),
        ({"name": "A", "email": "a@example.com", "password": "short"}, "password"),
        ({"name": "A", "email": "a@example.com", "password": "p" * 129}, "password"),
        ({"name": "A", "email": "a@example.com", "password": "pass\u0000word"}, "password"),
        ({"name": "A", "email": "a@example.com"}, "password"),
        (
            {
                "name": "A",
                "email": "a@example.com",
                "password": "quiet-lantern-1",
                "is_admin": True,
            },
            "is_admin",
        ),
    ],
)
async def test_invalid_sign_up_is_422_and_stores_nothing(
    api: Api, body: dict[str, object], field: str
) -> None:
    response = await api.client.post("/users/", json=body)
    assert response.status_code == 422
    assert field in {str(part) for error in response.json()["detail"] for part in error["loc"]}
    assert await api.count("users") == 0


@pytest.mark.parametrize("field", ["name", "password", "email"])
async def test_lone_surrogates_are_refused(api: Api, field: str) -> None:
    body = {"name": "A", "email": "a@example.com", "password": "quiet-lantern-1"}
    # json.dumps writes the lone surrogate as the escape a client would send.
    raw = json.dumps(body | {field: "\ud800"})
    response = await api.client.post(
        "/users/", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert await api.count("users") == 0


async def test_unicode_names_round_trip(api: Api) -> None:
    name = "زهرة 花子 🌸 Zoë"
    body = await api.sign_up(name=name)
    assert body["name"] == name
    assert await api.sql("SELECT name FROM users WHERE id = :id", id=body["id"]) == name


@pytest.mark.parametrize("chunked", [False, True])
async def test_bodies_over_one_mebibyte_are_413(api: Api, chunked: bool) -> None:
    payload = (
        b'{"name": "'
        + b"x" * (1024 * 1024)
        + b'", "email": "a@example.com", "password": "quiet-lantern-1"}'
    )

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 65536):
            yield payload[start : start + 65536]

    response = await api.client.post(
        "/users/",
        content=stream() if chunked else payload,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert await api.count("users") == 0


async def test_malformed_json_is_422(api: Api) -> None:
    response = await api.client.post(
        "/users/", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422


async def test_an_undeclared_http2_body_over_one_mebibyte_is_413(api: Api) -> None:
    # HTTP/2 may send a body with neither Content-Length nor Transfer-Encoding.
    body = b'{"name": "' + b"x" * (1024 * 1024) + b'", "email": "a@example.com"}'
    chunks = [body[start : start + 65536] for start in range(0, len(body), 65536)]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "2",
        "method": "POST",
        "scheme": "http",
        "path": "/users",
        "raw_path": b"/users",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    statuses: list[int] = []

    async def receive() -> Message:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await api.app(scope, receive, send)
    assert statuses == [413]
    assert await api.count("users") == 0


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("jose\u0301@example.com", "jos\u00e9@example.com"),
        ("JOS\u00c9@Example.COM", "jos\u00e9@example.com"),
        ("Strau\u00df@example.com", "strauss@example.com"),
        ("\u0130nci@example.com", "i\u0307nci@example.com"),
    ],
)
async def test_the_email_is_stored_in_the_form_a_login_looks_up(
    api: Api, sent: str, stored: str
) -> None:
    body = await api.sign_up(email=sent)
    assert body["email"] == stored
    assert await api.sql("SELECT email FROM users WHERE id = :id", id=body["id"]) == stored
    assert canonical_email(sent) == stored


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("jose\u0301@example.com", "JOS\u00c9@example.com"),
        ("strauss@example.com", "STRAU\u00df@example.com"),
        ("\u0130nci@example.com", "i\u0307nci@example.com"),
    ],
)
async def test_emails_that_differ_only_in_form_are_one_account(
    api: Api, first: str, second: str
) -> None:
    await api.sign_up(email=first)
    response = await api.client.post(
        "/users/", json={"name": "B", "email": second, "password": "quiet-lantern-1"}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Email already in use"}
    assert await api.count("users") == 1


async def test_a_name_with_a_bidi_override_is_422_and_stores_nothing(api: Api) -> None:
    response = await api.client.post(
        "/users/",
        json={"name": "Ada \u202egnp.exe", "email": "a@example.com", "password": "quiet-lantern-1"},
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "name"]
    assert "U+202E" in error["msg"]
    assert await api.count("users") == 0


async def test_a_new_password_follows_the_same_rules_as_at_sign_up(api: Api) -> None:
    user = await api.user()
    for weak in ("password123", user.email.upper() + "!", "\u200b" * 8):
        response = await api.client.patch(
            "/users/me",
            json={"password": weak, "current_password": user.password},
            headers=user.headers,
        )
        assert response.status_code == 422, weak
        assert weak not in response.text
    assert (await api.login(user.email, user.password)).status_code == 200


async def test_an_nfd_email_logs_in_as_typed(api: Api) -> None:
    email = "jose\u0301@example.com"
    await api.sign_up(email=email, password="quiet-lantern-1")
    assert (await api.login(email, "quiet-lantern-1")).status_code == 200
    assert (await api.login("JOS\u00c9@example.com", "quiet-lantern-1")).status_code == 200
