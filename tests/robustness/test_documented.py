"""The OpenAPI document tells what the validators check: clients and fuzzers can rely on it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.factories import Api

# Names and search text a client might send, tricky at the edges of what is allowed.
TEXTS = ["Lamp", "  Lamp  ", " ", "\t\n", "\u00a0", "a\u0085b", "a\u009cb", "a\x7fb", "a\x1fb"]
TEXTS += ["\u3000x", "zoë", "زهرة", "花子", "🌸", "a\u200bb", "\u202eevil"]
# Names are 1 to 100 characters once trimmed.
TEXTS += [" " + "x" * 100, "x" * 100 + "\n", "x" * 101, " " + "x" * 99 + " y", "🌸" * 100]


def _property(openapi: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    schema: dict[str, Any] = openapi["components"]["schemas"][model]["properties"][field]
    return schema


def _documented(schema: dict[str, Any], value: str) -> bool:
    # As in JSON Schema, a pattern may match anywhere (ours are anchored where they need to be).
    return (
        schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value))
        and re.search(schema["pattern"], value) is not None
    )


@pytest.mark.parametrize("name", TEXTS)
async def test_a_name_is_accepted_exactly_when_the_docs_allow_it(api: Api, name: str) -> None:
    owner = await api.user()
    openapi = (await api.client.get("/openapi.json")).json()
    response = await api.client.post(
        "/items/", json={"name": name, "price": 1}, headers=owner.headers
    )
    allowed = _documented(_property(openapi, "ItemCreate", "name"), name)
    assert response.status_code == (201 if allowed else 422), response.text


@pytest.mark.parametrize("q", TEXTS)
async def test_search_text_is_accepted_exactly_when_the_docs_allow_it(api: Api, q: str) -> None:
    openapi = (await api.client.get("/openapi.json")).json()
    (parameter,) = [p for p in openapi["paths"]["/items"]["get"]["parameters"] if p["name"] == "q"]
    (schema,) = [s for s in parameter["schema"]["anyOf"] if s.get("type") == "string"]
    response = await api.client.get("/items/", params={"q": q})
    assert response.status_code == (200 if _documented(schema, q) else 422), response.text


EMAILS = ["a@example.com", "a@x.test", "a@X.Test", "a@foo.localhost", "a@b.onion", "a@b.local "]
EMAILS += ["a@b.invalid", "a@in-addr.arpa", "a@test.com", "a@b.tests", "a@localhost.dev"]


@pytest.mark.parametrize("email", EMAILS)
async def test_an_email_is_accepted_exactly_when_the_docs_allow_it(api: Api, email: str) -> None:
    openapi = (await api.client.get("/openapi.json")).json()
    response = await api.client.post(
        "/users/", json={"name": "A", "email": email, "password": "quiet-lantern-1"}
    )
    allowed = _documented(_property(openapi, "UserCreate", "email"), email)
    assert response.status_code == (201 if allowed else 422), response.text


@pytest.mark.parametrize(
    ("model", "path"), [("UserUpdate", "/users/me"), ("ItemUpdate", "/items/{item_id}")]
)
async def test_patch_fields_are_not_documented_as_nullable(api: Api, model: str, path: str) -> None:
    openapi = (await api.client.get("/openapi.json")).json()
    for name, schema in openapi["components"]["schemas"][model]["properties"].items():
        assert "anyOf" not in schema, name
        assert schema.get("type") != "null", name
    owner = await api.user()
    item = await api.item(owner)
    response = await api.client.patch(
        path.format(item_id=item["id"]), json={"name": None}, headers=owner.headers
    )
    assert response.status_code == 422


BODY_ROUTES = [
    ("POST", "/users", "application/json"),
    ("PATCH", "/users/me", "application/json"),
    ("PATCH", "/users/{user_id}", "application/json"),
    ("POST", "/items", "application/json"),
    ("PATCH", "/items/{item_id}", "application/json"),
    ("POST", "/auth/token", "multipart/form-data"),
]


@pytest.mark.parametrize(("method", "path", "media_type"), BODY_ROUTES)
async def test_an_unparseable_body_is_a_documented_400(
    api: Api, method: str, path: str, media_type: str
) -> None:
    owner = await api.user()
    item = await api.item(owner)
    openapi = (await api.client.get("/openapi.json")).json()
    documented = openapi["paths"][path][method.lower()]["responses"]
    assert {"400", "413"} <= set(documented)
    response = await api.client.request(
        method,
        path.format(user_id=owner.id, item_id=item["id"]),
        content=b"\x80" if media_type == "application/json" else b"--x\r\n\r\n--x--",
        headers=owner.headers | {"Content-Type": f"{media_type}; boundary=x"},
    )
    assert response.status_code == 400
    assert isinstance(response.json()["detail"], str)
    assert await api.count("items") == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/items", {"name": "Lamp", "price": False}),
        ("/items", {"name": "Lamp", "price": True}),
        ("/items", {"name": "Lamp", "price": "12.5"}),
        ("/items", {"name": 12, "price": 1}),
        ("/users/{user_id}", {"is_active": 0}),
        ("/users/{user_id}", {"is_admin": "true"}),
        ("/users/me", {"name": ["A"]}),
    ],
)
async def test_values_of_another_json_type_are_422_not_coerced(
    api: Api, path: str, body: dict[str, object]
) -> None:
    admin = await api.user(admin=True)
    method = "POST" if path == "/items" else "PATCH"
    response = await api.client.request(
        method, path.format(user_id=admin.id), json=body, headers=admin.headers
    )
    assert response.status_code == 422, response.text
    assert await api.count("items") == 0
    assert await api.count("users", "is_admin AND is_active AND name = 'Test User'") == 1
