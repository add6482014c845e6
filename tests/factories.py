"""Small helpers that build users, tokens and items through the API, and read the database."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, replace
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import insert, text

from bazaar.items.models import Item

_numbers = itertools.count(1)


@dataclass
class Account:
    id: int
    email: str
    password: str
    token: str
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def account(client: httpx.AsyncClient, *, name: str = "Test User") -> Account:
    """A new user, signed up and logged in over HTTP (against any server `client` reaches)."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = "correct-horse"
    response = await client.post(
        "/users/", json={"name": name, "email": email, "password": password}
    )
    assert response.status_code == 201, response.text
    user_id = response.json()["id"]
    response = await client.post("/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    tokens = response.json()
    return Account(user_id, email, password, tokens["access_token"], tokens["refresh_token"])


class Api:
    def __init__(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        self.client = client
        self.app = app

    def use(self, **services: Any) -> None:
        """Give the running app other services (say, `passwords` at the production cost)."""
        self.app.state.services = replace(self.app.state.services, **services)

    async def sign_up(
        self, *, name: str = "Test User", email: str | None = None, password: str = "correct-horse"
    ) -> dict[str, Any]:
        email = email or f"user{next(_numbers)}@example.com"
        response = await self.client.post(
            "/users/", json={"name": name, "email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def login(self, email: str, password: str) -> httpx.Response:
        return await self.client.post("/auth/token", data={"username": email, "password": password})

    async def user(self, *, admin: bool = False, name: str = "Test User") -> Account:
        password = "correct-horse"
        body = await self.sign_up(name=name, password=password)
        if admin:
            await self.sql("UPDATE users SET is_admin = true WHERE id = :id", id=body["id"])
        response = await self.login(body["email"], password)
        assert response.status_code == 200, response.text
        tokens = response.json()
        return Account(
            body["id"], body["email"], password, tokens["access_token"], tokens["refresh_token"]
        )

    async def item(
        self, owner: Account, *, name: str = "Lamp", price: float = 10.0
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/items/", json={"name": name, "price": price}, headers=owner.headers
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def sql(self, statement: str, **params: Any) -> Any:
        """Run one statement in its own transaction; the first column of the first row."""
        async with self.app.state.services.engine.begin() as connection:
            result = await connection.execute(text(statement), params)
            return result.scalar() if result.returns_rows else None

    async def insert_items(self, rows: list[dict[str, Any]]) -> None:
        """Insert item rows directly, through the model's column types."""
        async with self.app.state.services.engine.begin() as connection:
            await connection.execute(insert(Item), [{"version": 1} | row for row in rows])

    async def count(self, table: str, where: str = "true", **params: Any) -> int:
        value = await self.sql(f"SELECT count(*) FROM {table} WHERE {where}", **params)  # noqa: S608
        return int(value)
