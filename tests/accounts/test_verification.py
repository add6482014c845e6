"""Email verification: sign-up mails a link; the link verifies once; a newer one ends it."""

from __future__ import annotations

import pytest

from bazaar.config import Settings
from tests.factories import Account, Api
from tests.smtp import Inbox

INVALID = {"detail": "Invalid or expired token"}


async def _signed_up(api: Api, inbox: Inbox, *, name: str = "Vera Nova") -> tuple[Account, str]:
    """A new account, and the token of the verification link mailed to it."""
    account = await api.user(name=name)
    (mail,) = await inbox.wait_for(1, to=account.email)
    return account, mail.token()


async def _is_verified(api: Api, account: Account) -> bool:
    response = await api.client.get("/users/me", headers=account.headers)
    assert response.status_code == 200
    verified: bool = response.json()["is_verified"]
    return verified


async def test_sign_up_mails_a_link_that_verifies_the_email(api: Api, inbox: Inbox) -> None:
    account = await api.user(name="Vera Nova")
    assert not await _is_verified(api, account)

    (mail,) = await inbox.wait_for(1, to=account.email)
    assert mail.envelope_to == [account.email]
    assert mail.subject == "Verify your email for Bazaar"
    assert mail.message["From"] == "Bazaar <no-reply@localhost>"
    assert mail.message["Message-ID"].endswith("@localhost>")
    assert "Hello Vera Nova" in mail.body
    # Every link starts with the public URL, whatever host the request named.
    assert mail.link().startswith("http://test/account/verify-email?token=")
    assert len(mail.token()) == 43  # 256 bits, URL-safe base64

    response = await api.client.post("/auth/verify-email", json={"token": mail.token()})
    assert response.status_code == 204
    assert await _is_verified(api, account)
    # Stored as a digest: the token itself is nowhere in the database.
    assert await api.count("one_time_tokens") == 1
    stored = await api.sql("SELECT token_hash FROM one_time_tokens")
    assert mail.token().encode() not in bytes(stored)
    assert len(bytes(stored)) == 32


async def test_a_link_works_once(api: Api, inbox: Inbox) -> None:
    _, token = await _signed_up(api, inbox)
    assert (await api.client.post("/auth/verify-email", json={"token": token})).status_code == 204
    again = await api.client.post("/auth/verify-email", json={"token": token})
    assert again.status_code == 400
    assert again.json() == INVALID


@pytest.mark.parametrize("token", ["", "x", "A" * 43, "A" * 44, "é" * 43, "A" * 200])
async def test_unknown_or_malformed_tokens_are_400(api: Api, token: str) -> None:
    response = await api.client.post("/auth/verify-email", json={"token": token})
    assert response.status_code == 400
    assert response.json() == INVALID


async def test_an_expired_link_is_dead(api: Api, inbox: Inbox) -> None:
    account, token = await _signed_up(api, inbox)
    # 48 hours have passed.
    await api.sql("UPDATE one_time_tokens SET expires_at = created_at")
    response = await api.client.post("/auth/verify-email", json={"token": token})
    assert response.status_code == 400
    assert not await _is_verified(api, account)


async def test_a_newer_link_ends_the_older(api: Api, inbox: Inbox) -> None:
    account, older = await _signed_up(api, inbox)
    response = await api.client.post("/auth/verify-email/resend", headers=account.headers)
    assert response.status_code == 202
    first, second = await inbox.wait_for(2, to=account.email)
    newer = second.token()
    assert newer != older
    assert first.message["Message-ID"] != second.message["Message-ID"]

    stale = await api.client.post("/auth/verify-email", json={"token": older})
    assert stale.status_code == 400
    assert not await _is_verified(api, account)
    assert (await api.client.post("/auth/verify-email", json={"token": newer})).status_code == 204
    assert await _is_verified(api, account)


async def test_resends_are_throttled_per_user(api: Api, inbox: Inbox) -> None:
    account, _ = await _signed_up(api, inbox)
    statuses = [
        (await api.client.post("/auth/verify-email/resend", headers=account.headers)).status_code
        for _ in range(4)
    ]
    assert statuses == [202, 202, 202, 429]
    await inbox.wait_for(4, to=account.email)
    # Another user's budget is their own.
    other, _ = await _signed_up(api, inbox)
    response = await api.client.post("/auth/verify-email/resend", headers=other.headers)
    assert response.status_code == 202


async def test_resend_needs_a_token(api: Api) -> None:
    response = await api.client.post("/auth/verify-email/resend")
    assert response.status_code == 401


async def test_listing_needs_a_verified_email_when_required(api: Api, inbox: Inbox) -> None:
    services = api.app.state.services
    settings: Settings = services.settings
    api.use(settings=settings.model_copy(update={"require_verified_email": True}))
    account, token = await _signed_up(api, inbox)
    item = {"name": "Lamp", "price": 5}

    refused = await api.client.post("/items/", json=item, headers=account.headers)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Verify your email first"}
    assert await api.count("items") == 0

    assert (await api.client.post("/auth/verify-email", json={"token": token})).status_code == 204
    assert (await api.client.post("/items/", json=item, headers=account.headers)).status_code == 201


async def test_unverified_users_list_items_by_default(api: Api, inbox: Inbox) -> None:
    account, _ = await _signed_up(api, inbox)
    response = await api.client.post(
        "/items/", json={"name": "Lamp", "price": 5}, headers=account.headers
    )
    assert response.status_code == 201
