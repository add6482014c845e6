"""Sessions: refresh tokens that rotate, logout, the list of sessions, and every way one ends."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import jwt
import pytest

from bazaar.auth import models
from bazaar.config import Settings
from bazaar.pruning import prune
from bazaar.security import token_hash
from tests.factories import Account, Api


async def _refresh(api: Api, refresh_token: str) -> httpx.Response:
    return await api.client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


async def _me(api: Api, access_token: str) -> int:
    response = await api.client.get(
        "/users/me", headers={"Authorization": f"Bearer {access_token}"}
    )
    return response.status_code


def _session_of(access_token: str) -> str:
    session_id: str = jwt.decode(access_token, options={"verify_signature": False})["sid"]
    return session_id


async def test_login_opens_a_session_with_a_refresh_token(api: Api) -> None:
    body = await api.sign_up(email="opener@example.com", password="quiet-lantern-1")
    response = await api.client.post(
        "/auth/token",
        data={"username": "opener@example.com", "password": "quiet-lantern-1"},
        headers={"User-Agent": "TestBrowser/1.0"},
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert set(tokens) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
    }
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 30 * 60
    # 14 days, give or take the second the request took.
    assert 14 * 86400 - 5 <= tokens["refresh_expires_in"] <= 14 * 86400
    # 256 random bits, and only their hash is stored.
    assert len(tokens["refresh_token"]) >= 43
    stored = await api.sql("SELECT token_hash FROM refresh_tokens")
    assert stored == token_hash(tokens["refresh_token"]) != tokens["refresh_token"]
    row = await api.sql(
        "SELECT user_agent || ' ' || ip FROM sessions WHERE id = :id",
        id=_session_of(tokens["access_token"]),
    )
    assert row == "TestBrowser/1.0 127.0.0.1"
    assert await api.count("sessions", "user_id = :id", id=body["id"]) == 1


async def test_a_refresh_token_rotates_within_its_session(api: Api) -> None:
    user = await api.user()
    response = await _refresh(api, user.refresh_token)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    pair = response.json()
    assert pair["refresh_token"] != user.refresh_token
    assert _session_of(pair["access_token"]) == _session_of(user.token)
    assert await _me(api, pair["access_token"]) == 200
    # The older access token is of the same, still open session.
    assert await _me(api, user.token) == 200
    # The new refresh token rotates in turn.
    again = await _refresh(api, pair["refresh_token"])
    assert again.status_code == 200
    assert await api.count("sessions") == 1


async def test_a_used_token_within_the_grace_gets_a_fresh_pair_of_the_same_session(
    api: Api,
) -> None:
    assert timedelta(seconds=10) == models.REUSE_GRACE
    user = await api.user()
    first = await _refresh(api, user.refresh_token)
    second = await _refresh(api, user.refresh_token)  # a second tab, a moment later
    assert first.status_code == second.status_code == 200
    one, two = first.json(), second.json()
    assert one["refresh_token"] != two["refresh_token"]
    assert _session_of(one["access_token"]) == _session_of(two["access_token"])
    # Both tabs go on refreshing.
    assert (await _refresh(api, one["refresh_token"])).status_code == 200
    assert (await _refresh(api, two["refresh_token"])).status_code == 200
    assert await api.count("sessions") == 1


async def test_a_used_token_after_the_grace_ends_the_session(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await api.user()
    rotated = (await _refresh(api, user.refresh_token)).json()
    in_grace = (await _refresh(api, user.refresh_token)).json()
    # Time has passed: the token was used longer ago than the grace.
    monkeypatch.setattr("bazaar.auth.changes.REUSE_GRACE", timedelta(0))
    stolen = await _refresh(api, user.refresh_token)
    assert stolen.status_code == 401
    assert stolen.json() == {"detail": "Invalid or expired refresh token"}
    assert stolen.headers["www-authenticate"] == "Bearer"
    # The whole session ended: every token it issued, the pair of the grace window too.
    for pair in (rotated, in_grace):
        assert (await _refresh(api, pair["refresh_token"])).status_code == 401
        assert await _me(api, pair["access_token"]) == 401
    assert await _me(api, user.token) == 401
    assert await api.count("sessions", "revoked_at IS NOT NULL") == 1


async def test_concurrent_refreshes_of_one_token_keep_one_session(api: Api) -> None:
    user = await api.user()
    responses = await asyncio.gather(*(_refresh(api, user.refresh_token) for _ in range(20)))
    # Every tab gets a pair (the first claims the token, the others are in its grace),
    # none a 5xx, and none forks the session.
    assert [r.status_code for r in responses] == [200] * 20
    sessions = {_session_of(r.json()["access_token"]) for r in responses}
    assert sessions == {_session_of(user.token)}
    assert await api.count("sessions") == 1
    assert await api.count("sessions", "revoked_at IS NULL") == 1
    # One new refresh token per response, all distinct and all good.
    assert len({r.json()["refresh_token"] for r in responses}) == 20
    assert await api.count("refresh_tokens", "used_at IS NULL") == 20


@pytest.mark.parametrize(
    ("token", "status"),
    [("", 422), ("x", 401), ("A" * 43, 401), ("A" * 257, 422)],
    ids=["empty", "short", "made-up", "too long"],
)
async def test_a_bad_refresh_token_is_refused(api: Api, token: str, status: int) -> None:
    await api.user()
    response = await _refresh(api, token)
    assert response.status_code == status
    if status == 422 and token:
        assert token not in response.text  # a 422 never echoes a token
    assert await api.count("sessions", "revoked_at IS NULL") == 1


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "client_credentials"},
        {"grant_type": "refresh_token"},
        {"grant_type": "password", "username": "a@example.com"},
    ],
    ids=["unsupported grant", "no refresh token", "no password"],
)
async def test_an_incomplete_token_request_is_422(api: Api, form: dict[str, str]) -> None:
    response = await api.client.post("/auth/token", data=form)
    assert response.status_code == 422


async def test_logout_ends_the_access_and_refresh_tokens_at_once(api: Api) -> None:
    user = await api.user()
    other_session = (await api.login(user.email, user.password)).json()
    response = await api.client.post("/auth/logout", headers=user.headers)
    assert response.status_code == 204
    assert await _me(api, user.token) == 401
    assert (await _refresh(api, user.refresh_token)).status_code == 401
    assert (await api.client.post("/auth/logout", headers=user.headers)).status_code == 401
    # The user's other session is untouched.
    assert await _me(api, other_session["access_token"]) == 200


async def test_sessions_are_listed_with_the_current_one(api: Api) -> None:
    user = await api.user()
    phone = await api.client.post(
        "/auth/token",
        data={"username": user.email, "password": user.password},
        headers={"User-Agent": "Phone/2"},
    )
    stranger = await api.user()
    response = await api.client.get("/auth/sessions", headers=user.headers)
    assert response.status_code == 200
    listed = response.json()
    assert {s["id"] for s in listed} == {
        _session_of(user.token),
        _session_of(phone.json()["access_token"]),
    }
    assert _session_of(stranger.token) not in {s["id"] for s in listed}
    current = [s for s in listed if s["current"]]
    assert [s["id"] for s in current] == [_session_of(user.token)]
    assert set(listed[0]) == {
        "id",
        "created_at",
        "last_used_at",
        "expires_at",
        "user_agent",
        "ip",
        "current",
    }
    assert "Phone/2" in {s["user_agent"] for s in listed}
    # An ended session is no longer listed.
    await api.client.delete(
        f"/auth/sessions/{_session_of(phone.json()['access_token'])}", headers=user.headers
    )
    after = (await api.client.get("/auth/sessions", headers=user.headers)).json()
    assert [s["id"] for s in after] == [_session_of(user.token)]


async def test_ending_one_session_leaves_the_others(api: Api) -> None:
    user = await api.user()
    laptop = (await api.login(user.email, user.password)).json()
    response = await api.client.delete(
        f"/auth/sessions/{_session_of(laptop['access_token'])}", headers=user.headers
    )
    assert response.status_code == 204
    assert await _me(api, laptop["access_token"]) == 401
    assert (await _refresh(api, laptop["refresh_token"])).status_code == 401
    assert await _me(api, user.token) == 200
    # Already ended: there is no such open session any more.
    again = await api.client.delete(
        f"/auth/sessions/{_session_of(laptop['access_token'])}", headers=user.headers
    )
    assert again.status_code == 404


async def test_another_users_session_is_404_and_untouched(api: Api) -> None:
    user, other = await api.user(), await api.user()
    for session_id in (_session_of(other.token), "no-such-session"):
        response = await api.client.delete(f"/auth/sessions/{session_id}", headers=user.headers)
        assert response.status_code == 404
        assert response.json() == {"detail": "Session not found"}
    assert await _me(api, other.token) == 200


async def test_signing_out_everywhere_ends_every_session(api: Api) -> None:
    user = await api.user()
    other = (await api.login(user.email, user.password)).json()
    stranger = await api.user()
    response = await api.client.delete("/auth/sessions", headers=user.headers)
    assert response.status_code == 204
    for access, refresh in (
        (user.token, user.refresh_token),
        (other["access_token"], other["refresh_token"]),
    ):
        assert await _me(api, access) == 401
        assert (await _refresh(api, refresh)).status_code == 401
    assert await _me(api, stranger.token) == 200


async def _both_fail(api: Api, user: Account) -> None:
    assert await _me(api, user.token) == 401
    assert (await _refresh(api, user.refresh_token)).status_code == 401


async def test_a_password_change_ends_every_session(api: Api) -> None:
    user = await api.user()
    other = await api.login(user.email, user.password)
    response = await api.client.patch(
        "/users/me",
        json={"password": "brand-new-lantern-2", "current_password": user.password},
        headers=user.headers,
    )
    assert response.status_code == 200
    await _both_fail(api, user)
    assert await _me(api, other.json()["access_token"]) == 401
    assert (await api.login(user.email, "brand-new-lantern-2")).status_code == 200


async def test_an_admins_password_change_ends_the_users_sessions(api: Api) -> None:
    admin, user = await api.user(admin=True), await api.user()
    response = await api.client.patch(
        f"/users/{user.id}", json={"password": "brand-new-lantern-2"}, headers=admin.headers
    )
    assert response.status_code == 200
    await _both_fail(api, user)
    assert await _me(api, admin.token) == 200


async def test_a_deactivation_ends_every_session(api: Api) -> None:
    admin, user = await api.user(admin=True), await api.user()
    response = await api.client.patch(
        f"/users/{user.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 200
    await _both_fail(api, user)
    assert await api.count("sessions", "user_id = :id AND revoked_at IS NULL", id=user.id) == 0
    # Reactivated, the old session stays ended: the user logs in afresh.
    await api.client.patch(f"/users/{user.id}", json={"is_active": True}, headers=admin.headers)
    await _both_fail(api, user)
    assert (await api.login(user.email, user.password)).status_code == 200


async def test_a_deletion_ends_every_session(api: Api) -> None:
    user = await api.user()
    response = await api.client.delete(f"/users/{user.id}", headers=user.headers)
    assert response.status_code == 204
    await _both_fail(api, user)
    assert await api.count("sessions") == 0


async def test_an_admin_ends_a_users_sessions(api: Api) -> None:
    admin, user = await api.user(admin=True), await api.user()
    response = await api.client.delete(f"/users/{user.id}/sessions", headers=admin.headers)
    assert response.status_code == 204
    await _both_fail(api, user)
    assert await _me(api, admin.token) == 200


async def test_only_admins_end_a_users_sessions(api: Api) -> None:
    admin, user, other = await api.user(admin=True), await api.user(), await api.user()
    assert (await api.client.delete(f"/users/{other.id}/sessions")).status_code == 401
    refused = await api.client.delete(f"/users/{other.id}/sessions", headers=user.headers)
    assert refused.status_code == 403
    # Not even one's own: "sign out everywhere" is DELETE /auth/sessions.
    assert (
        await api.client.delete(f"/users/{user.id}/sessions", headers=user.headers)
    ).status_code == 403
    assert await _me(api, other.token) == 200
    assert await _me(api, user.token) == 200
    missing = await api.client.delete("/users/999999/sessions", headers=admin.headers)
    assert missing.status_code == 404


async def test_the_session_endpoints_need_a_token(api: Api) -> None:
    for method, path in (
        ("POST", "/auth/logout"),
        ("GET", "/auth/sessions"),
        ("DELETE", "/auth/sessions"),
        ("DELETE", "/auth/sessions/whatever"),
    ):
        response = await api.client.request(method, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"


# A session that lives two seconds: long enough to use, short enough to outlive.
SHORT = 2.0


async def test_a_session_ends_at_its_absolute_expiry(api: Api, settings: Settings) -> None:
    short = settings.model_copy(update={"session_days": SHORT / 86400})
    api.use(settings=short)
    user = await api.user()
    refreshed = (await _refresh(api, user.refresh_token)).json()
    # Never past the session's own end, however long a refresh token may live.
    assert refreshed["refresh_expires_in"] <= SHORT
    deadline = time.monotonic() + 30
    while await _me(api, refreshed["access_token"]) == 200:
        assert time.monotonic() < deadline, "the session outlived its expiry"
        await asyncio.sleep(0.2)
    assert (await _refresh(api, refreshed["refresh_token"])).status_code == 401
    # No longer listed.
    fresh = await api.user()
    listed = (await api.client.get("/auth/sessions", headers=fresh.headers)).json()
    assert len(listed) == 1


async def test_pruning_deletes_ended_sessions_and_expired_tokens(api: Api) -> None:
    kept, logged_out, expired = await api.user(), await api.user(), await api.user()
    await api.client.post("/auth/logout", headers=logged_out.headers)
    await api.sql("UPDATE sessions SET expires_at = created_at WHERE user_id = :id", id=expired.id)
    await _refresh(api, kept.refresh_token)  # one used token, one new: both kept
    await api.sql(
        "UPDATE refresh_tokens SET expires_at = issued_at WHERE token_hash = :hash",
        hash=token_hash(kept.refresh_token),
    )
    executor = api.app.state.services.executor
    pruned = await prune(executor)
    assert (pruned.sessions, pruned.refresh_tokens) == (2, 1)
    assert await api.count("sessions") == 1
    assert await api.count("sessions", "user_id = :id", id=kept.id) == 1
    assert await api.count("refresh_tokens") == 1
    # Idempotent: a second worker pruning at the same time finds nothing left.
    again = await asyncio.gather(prune(executor), prune(executor))
    assert [(p.sessions, p.refresh_tokens) for p in again] == [(0, 0), (0, 0)]
    assert await _me(api, kept.token) == 200
