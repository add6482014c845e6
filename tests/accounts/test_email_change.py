"""Changing one's email: the current password, a link to the new address, a notice to the old."""

from __future__ import annotations

from tests.factories import Account, Api
from tests.smtp import Inbox

FORBIDDEN = {"detail": "current_password is missing or wrong"}


async def _verified(api: Api, inbox: Inbox) -> Account:
    account = await api.user(name="Mover")
    (mail,) = await inbox.wait_for(1, to=account.email)
    response = await api.client.post("/auth/verify-email", json={"token": mail.token()})
    assert response.status_code == 204
    return account


async def _me(api: Api, account: Account) -> dict[str, object]:
    response = await api.client.get("/users/me", headers=account.headers)
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_changing_ones_email_needs_the_current_password(api: Api, inbox: Inbox) -> None:
    account = await _verified(api, inbox)
    for extra in ({}, {"current_password": "not-my-password"}):
        response = await api.client.patch(
            "/users/me", json={"email": "new@example.com", **extra}, headers=account.headers
        )
        assert response.status_code == 403
        assert response.json() == FORBIDDEN
    me = await _me(api, account)
    assert (me["email"], me["is_verified"]) == (account.email, True)
    # On `/users/{id}` too, when the id is one's own.
    response = await api.client.patch(
        f"/users/{account.id}", json={"email": "new@example.com"}, headers=account.headers
    )
    assert response.status_code == 403
    # The email one has already is no change.
    response = await api.client.patch(
        "/users/me", json={"email": account.email}, headers=account.headers
    )
    assert response.status_code == 200


async def test_a_new_email_is_unverified_until_its_link_is_used(api: Api, inbox: Inbox) -> None:
    account = await _verified(api, inbox)
    response = await api.client.patch(
        "/users/me",
        json={"email": "New@Example.com", "current_password": account.password},
        headers=account.headers,
    )
    assert response.status_code == 200
    assert response.json()["email"] == "new@example.com"
    assert response.json()["is_verified"] is False

    (link,) = await inbox.wait_for(1, to="new@example.com")
    assert link.subject == "Verify your email for Bazaar"
    notices = await inbox.wait_for(2, to=account.email)
    notice = notices[1]
    assert notice.subject == "The email of your Bazaar account was changed"
    assert "http" not in notice.body  # nothing to click in a notice
    assert "new@example.com" not in notice.body

    assert (
        await api.client.post("/auth/verify-email", json={"token": link.token()})
    ).status_code == 204
    assert (await _me(api, account))["is_verified"] is True
    assert (await api.login("new@example.com", account.password)).status_code == 200


async def test_a_link_to_the_old_address_no_longer_verifies(api: Api, inbox: Inbox) -> None:
    account = await api.user()
    (old,) = await inbox.wait_for(1, to=account.email)
    response = await api.client.patch(
        "/users/me",
        json={"email": "new@example.com", "current_password": account.password},
        headers=account.headers,
    )
    assert response.status_code == 200
    stale = await api.client.post("/auth/verify-email", json={"token": old.token()})
    assert stale.status_code == 400
    assert (await _me(api, account))["is_verified"] is False


async def test_an_admins_change_needs_neither_password_nor_verification(
    api: Api, inbox: Inbox
) -> None:
    admin = await api.user(admin=True)
    user = await _verified(api, inbox)
    mails_before = await api.count("outbox")
    response = await api.client.patch(
        f"/users/{user.id}", json={"email": "fixed@example.com"}, headers=admin.headers
    )
    assert response.status_code == 200
    assert response.json()["email"] == "fixed@example.com"
    assert response.json()["is_verified"] is True
    await api.app.state.services.background.drain()
    assert await api.count("outbox") == mails_before
