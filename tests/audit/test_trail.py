"""The audit trail of the API: who changed what, from where, in the change's transaction."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from bazaar.audit import changes as audit
from bazaar.users.models import User
from tests.audit.events import audit_events
from tests.factories import Api


async def test_an_admins_change_is_recorded_with_who_where_and_which_request(api: Api) -> None:
    admin = await api.user(admin=True)
    user = await api.user(name="Before")
    response = await api.client.patch(
        f"/users/{user.id}",
        json={"name": "After", "is_active": False},
        headers=admin.headers | {"X-Request-ID": "audit-req-1"},
    )
    assert response.status_code == 200, response.text

    # Deactivated: the user's sessions end, and that is recorded too.
    ended, event = await audit_events(api.app)
    assert (ended["actor_id"], ended["action"], ended["target_id"]) == (
        admin.id,
        "user.sessions_revoke",
        str(user.id),
    )
    assert ended["changes"] == {"open_sessions": {"old": 1, "new": 0}}
    assert event["actor_id"] == admin.id
    assert event["action"] == "user.update"
    assert (event["target_type"], event["target_id"]) == ("user", str(user.id))
    assert event["changes"] == {
        "name": {"old": "Before", "new": "After"},
        "is_active": {"old": True, "new": False},
    }
    assert event["request_id"] == "audit-req-1"
    # httpx's ASGI transport calls from this address.
    assert event["client_address"] == "127.0.0.1"
    assert event["created_at"] is not None


async def test_an_admins_rename_and_deletion_of_an_account_are_recorded(api: Api) -> None:
    admin = await api.user(admin=True)
    user = await api.user(name="Old Name")
    response = await api.client.put(
        f"/users/{user.id}", params={"name": "New Name"}, headers=admin.headers
    )
    assert response.status_code == 200
    response = await api.client.delete(f"/users/{user.id}", headers=admin.headers)
    assert response.status_code == 204

    renamed, deleted = await audit_events(api.app)
    assert (renamed["actor_id"], renamed["action"]) == (admin.id, "user.update")
    assert renamed["changes"] == {"name": {"old": "Old Name", "new": "New Name"}}
    assert (deleted["actor_id"], deleted["action"], deleted["target_id"]) == (
        admin.id,
        "user.delete",
        str(user.id),
    )


async def test_a_password_change_is_recorded_and_no_secret_is(api: Api) -> None:
    user = await api.user()
    new_password = "a-brand-new-secret-9"
    response = await api.client.patch(
        "/users/me",
        json={"password": new_password, "current_password": user.password},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text

    event, ended = await audit_events(api.app)
    assert (event["actor_id"], event["action"]) == (user.id, "user.password_change")
    assert event["changes"] is None
    assert (ended["action"], ended["target_id"]) == ("user.sessions_revoke", str(user.id))
    stored_hash = await api.sql("SELECT hashed_password FROM users WHERE id = :id", id=user.id)
    everything = json.dumps([event, ended], default=str)
    for secret in (user.password, new_password, stored_hash, "$argon2", user.token):
        assert secret not in everything


async def test_an_email_change_records_the_old_and_new_address(api: Api) -> None:
    user = await api.user()
    body = {"email": "Moved@Example.com", "current_password": user.password}
    response = await api.client.patch("/users/me", json=body, headers=user.headers)
    assert response.status_code == 200, response.text
    (event,) = await audit_events(api.app)
    assert event["action"] == "user.update"
    assert event["changes"] == {"email": {"old": user.email, "new": "moved@example.com"}}


async def test_an_account_deletion_is_recorded_and_outlives_the_account(api: Api) -> None:
    user = await api.user(name="Leaving")
    response = await api.client.delete(f"/users/{user.id}", headers=user.headers)
    assert response.status_code == 204
    (event,) = await audit_events(api.app)
    assert (event["actor_id"], event["action"]) == (user.id, "user.delete")
    assert event["target_id"] == str(user.id)
    assert event["changes"]["email"] == {"old": user.email, "new": None}
    assert await api.count("users", "id = :id", id=user.id) == 0


async def test_an_admins_changes_to_an_item_are_recorded(api: Api) -> None:
    admin = await api.user(admin=True)
    owner = await api.user()
    item = await api.item(owner, name="Lamp", price=10)
    response = await api.client.patch(
        f"/items/{item['id']}", json={"price": 12.5}, headers=admin.headers
    )
    assert response.status_code == 200
    response = await api.client.delete(f"/items/{item['id']}", headers=admin.headers)
    assert response.status_code == 204

    update, deletion = await audit_events(api.app)
    assert (update["actor_id"], update["action"]) == (admin.id, "item.update")
    assert update["changes"] == {"price": {"old": 10.0, "new": 12.5}}
    assert (deletion["action"], deletion["target_id"]) == ("item.delete", str(item["id"]))
    assert deletion["changes"]["owner_id"] == {"old": owner.id, "new": None}


async def test_a_change_that_rolls_back_leaves_no_row(api: Api) -> None:
    user = await api.user()
    other = await api.user()
    # The password change is recorded first; the taken email then fails the request.
    response = await api.client.patch(
        "/users/me",
        json={
            "password": "a-brand-new-secret-9",
            "current_password": user.password,
            "email": other.email,
        },
        headers=user.headers,
    )
    assert response.status_code == 400, response.text
    assert await audit_events(api.app) == []
    # Nothing else of the request stayed either.
    assert (await api.login(user.email, user.password)).status_code == 200


async def test_a_change_that_changes_nothing_records_nothing(api: Api) -> None:
    user = await api.user(name="Same")
    response = await api.client.patch("/users/me", json={"name": "Same"}, headers=user.headers)
    assert response.status_code == 200
    assert await audit_events(api.app) == []


async def test_session_revocations_are_recorded_under_their_user(api: Api) -> None:
    admin = await api.user(admin=True)
    user = await api.user()
    second = await api.login(user.email, user.password)
    session_id = next(
        s["id"]
        for s in (await api.client.get("/auth/sessions", headers=user.headers)).json()
        if not s["current"]
    )
    response = await api.client.delete(f"/auth/sessions/{session_id}", headers=user.headers)
    assert response.status_code == 204
    response = await api.client.delete(f"/users/{user.id}/sessions", headers=admin.headers)
    assert response.status_code == 204

    own, by_admin = await audit_events(api.app)
    assert (own["actor_id"], own["action"], own["target_id"]) == (
        user.id,
        "session.revoke",
        str(user.id),
    )
    assert own["changes"] == {"session": {"old": session_id, "new": None}}
    assert (by_admin["actor_id"], by_admin["action"]) == (admin.id, "user.sessions_revoke")
    assert by_admin["changes"] == {"open_sessions": {"old": 1, "new": 0}}
    refresh_token = second.json()["refresh_token"]
    assert refresh_token not in json.dumps([own, by_admin], default=str)


async def test_a_session_ended_for_a_reused_refresh_token_is_recorded(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await api.user()
    token = (await api.login(user.email, user.password)).json()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": token}
    assert (await api.client.post("/auth/token", data=form)).status_code == 200
    # Time has passed: the token was used longer ago than the grace.
    monkeypatch.setattr("bazaar.auth.changes.REUSE_GRACE", timedelta(0))
    assert (await api.client.post("/auth/token", data=form)).status_code == 401

    (event,) = await audit_events(api.app)
    assert event["actor_id"] is None  # nobody signed in: the refresh grant has no caller
    assert (event["action"], event["target_id"]) == ("session.revoke_reused_token", str(user.id))
    assert event["client_address"] == "127.0.0.1"
    assert token not in json.dumps(event, default=str)


@pytest.mark.parametrize("field", ["password", "hashed_password", "token", "current_password"])
async def test_the_writer_refuses_a_secret(api: Api, field: str) -> None:
    user = await api.user()
    async with api.app.state.services.sessionmakers[True]() as session:
        found = await session.scalar(select(User).where(User.id == user.id))
        assert found is not None
        with pytest.raises(ValueError, match="never audited"):
            await audit.record(
                session,
                action="user.update",
                target_type="user",
                target_id=found.id,
                changes={field: ("old", "new")},
            )


async def test_a_password_reset_is_recorded_without_its_token(api: Api) -> None:
    user = await api.user()
    response = await api.client.post("/auth/forgot-password", json={"email": user.email})
    assert response.status_code == 202
    # The mail is queued in the background (the answer must not tell whether it was).
    body = None
    for _ in range(200):
        body = await api.sql(
            "SELECT body FROM outbox WHERE recipient = :email AND subject LIKE '%password%'",
            email=user.email,
        )
        if body is not None:
            break
        await asyncio.sleep(0.05)
    assert body is not None
    match = re.search(r"token=([A-Za-z0-9_-]+)", body)
    assert match is not None, body
    token = match.group(1)
    new_password = "reset-to-something-new"
    response = await api.client.post(
        "/auth/reset-password", json={"token": token, "password": new_password}
    )
    assert response.status_code == 204, response.text

    reset, ended = await audit_events(api.app)
    assert reset["actor_id"] is None  # nobody signed in: the link is the proof
    assert (reset["action"], reset["target_id"]) == ("user.password_reset", str(user.id))
    assert (ended["action"], ended["target_id"]) == ("user.sessions_revoke", str(user.id))
    everything = json.dumps([reset, ended], default=str)
    for secret in (token, new_password, user.password):
        assert secret not in everything
