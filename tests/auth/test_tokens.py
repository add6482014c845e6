"""Bearer tokens: forgeries are refused, and a token dies with its session or its user's
access."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from bazaar.security import Tokens
from tests.conftest import SECRET
from tests.factories import Account, Api


def _claims(user_id: int, **changes: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {"sub": str(user_id), "iat": now, "exp": now + timedelta(minutes=5)}
    claims.update(changes)
    return claims


def _unsigned(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        raw = json.dumps(value, default=lambda d: int(d.timestamp())).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def _me(api: Api, token: str) -> int:
    response = await api.client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    return response.status_code


def _session_of(user: Account) -> str:
    session_id: str = jwt.decode(user.token, options={"verify_signature": False})["sid"]
    return session_id


async def test_a_genuine_token_works(api: Api) -> None:
    user = await api.user()
    assert await _me(api, user.token) == 200
    # The same claims signed by the test: proves the forgeries below fail for their flaw alone.
    forged_right = jwt.encode(_claims(user.id, sid=_session_of(user)), SECRET, "HS256")
    assert await _me(api, forged_right) == 200


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize(
    "forge",
    [
        "other key",
        "alg none",
        "HS512",
        "expired",
        "garbage",
        "no sub",
        "no iat",
        "no exp",
        "sub not a number",
        "sub out of range",
        "no session",
        "session not a string",
        "made-up session",
        "another user's session",
    ],
)
async def test_forged_or_broken_tokens_are_401(api: Api, forge: str) -> None:
    user = await api.user()
    other = await api.user()
    claims = _claims(user.id, sid=_session_of(user))
    now = datetime.now(UTC)
    forgeries: dict[str, Callable[[], str]] = {
        "other key": lambda: jwt.encode(
            claims, "another-secret-key-of-sufficient-length!", "HS256"
        ),
        "alg none": lambda: _unsigned(claims),
        "HS512": lambda: jwt.encode(claims, SECRET, "HS512"),
        "expired": lambda: jwt.encode(
            claims | {"iat": now - timedelta(hours=2), "exp": now - timedelta(hours=1)},
            SECRET,
            "HS256",
        ),
        "garbage": lambda: "not.a.token",
        "no sub": lambda: jwt.encode({k: v for k, v in claims.items() if k != "sub"}, SECRET),
        "no iat": lambda: jwt.encode({k: v for k, v in claims.items() if k != "iat"}, SECRET),
        "no exp": lambda: jwt.encode({k: v for k, v in claims.items() if k != "exp"}, SECRET),
        "sub not a number": lambda: jwt.encode(claims | {"sub": "admin"}, SECRET),
        "sub out of range": lambda: jwt.encode(claims | {"sub": str(2**63)}, SECRET),
        "no session": lambda: jwt.encode({k: v for k, v in claims.items() if k != "sid"}, SECRET),
        "session not a string": lambda: jwt.encode(claims | {"sid": 1}, SECRET),
        "made-up session": lambda: jwt.encode(claims | {"sid": "A" * 22}, SECRET),
        "another user's session": lambda: jwt.encode(claims | {"sid": _session_of(other)}, SECRET),
    }
    assert await _me(api, forgeries[forge]()) == 401


async def test_missing_or_non_bearer_authorization_is_401(api: Api) -> None:
    user = await api.user()
    assert (await api.client.get("/users/me")).status_code == 401
    basic = await api.client.get("/users/me", headers={"Authorization": f"Basic {user.token}"})
    assert basic.status_code == 401
    assert basic.headers["www-authenticate"] == "Bearer"


async def test_a_deleted_users_token_is_401(api: Api) -> None:
    user = await api.user()
    await api.sql("DELETE FROM users WHERE id = :id", id=user.id)
    assert await _me(api, user.token) == 401


async def test_a_deactivated_users_token_is_401(api: Api) -> None:
    user = await api.user()
    await api.sql("UPDATE users SET is_active = false WHERE id = :id", id=user.id)
    assert await _me(api, user.token) == 401


async def test_changing_the_password_revokes_earlier_tokens(api: Api) -> None:
    user = await api.user()
    response = await api.client.patch(
        "/users/me",
        json={"password": "new-password", "current_password": user.password},
        headers=user.headers,
    )
    assert response.status_code == 200
    assert await _me(api, user.token) == 401
    fresh = await api.login(user.email, "new-password")
    assert await _me(api, fresh.json()["access_token"]) == 200


async def test_an_admin_who_loses_the_right_is_403_on_admin_routes(api: Api) -> None:
    admin = await api.user(admin=True)
    assert (await api.client.get("/users/", headers=admin.headers)).status_code == 200
    await api.sql("UPDATE users SET is_admin = false WHERE id = :id", id=admin.id)
    assert (await api.client.get("/users/", headers=admin.headers)).status_code == 403


def test_a_token_read_before_stops_working_when_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lifetime = timedelta(minutes=30)
    tokens = Tokens(SECRET, lifetime)
    issued = datetime.now(UTC) - lifetime + timedelta(seconds=60)  # a minute left
    token = tokens.issue(7, "session", now=issued)
    claims = tokens.read(token)
    assert claims is not None
    assert claims.user_id == 7
    assert tokens.read(token) == claims
    assert tokens._verified.cache_info().hits == 1  # the second read was the remembered one
    later = claims.expires + 1
    monkeypatch.setattr("bazaar.security.time.time", lambda: later)
    assert tokens.read(token) is None


def test_only_genuine_tokens_are_remembered() -> None:
    tokens = Tokens(SECRET, timedelta(minutes=30))
    forged = jwt.encode(_claims(7, sid="x"), "another-secret-key-of-sufficient-length!")
    for _ in range(3):
        assert tokens.read(forged) is None
    assert tokens.read(tokens.issue(7, "session")) is not None
    assert tokens._verified.cache_info().currsize == 1


@pytest.mark.parametrize("revoke", ["delete", "deactivate", "logout"])
async def test_a_revoked_token_lists_no_item(api: Api, revoke: str) -> None:
    # Listing an item checks its seller in the same call to the database as the insert.
    user = await api.user()
    if revoke == "delete":
        await api.sql("DELETE FROM users WHERE id = :id", id=user.id)
    elif revoke == "deactivate":
        await api.sql("UPDATE users SET is_active = false WHERE id = :id", id=user.id)
    else:
        assert (await api.client.post("/auth/logout", headers=user.headers)).status_code == 204
    response = await api.client.post(
        "/items/", json={"name": "lamp", "price": 1}, headers=user.headers
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert await api.count("items") == 0
