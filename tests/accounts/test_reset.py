"""Password reset: the same answer whether or not the account exists; links used once."""

from __future__ import annotations

import time

import pytest

from bazaar.accounts.router import FORGOT_PASSWORD_ANSWER
from bazaar.config import Settings
from bazaar.throttle import Throttle
from tests.factories import Account, Api
from tests.smtp import Inbox

ANSWER = {"detail": FORGOT_PASSWORD_ANSWER}
INVALID = {"detail": "Invalid or expired token"}
NEW_PASSWORD = "a-new-tide-rising"


async def _forgot(api: Api, email: str) -> None:
    response = await api.client.post("/auth/forgot-password", json={"email": email})
    assert response.status_code == 202, response.text
    assert response.json() == ANSWER


async def _reset_token(api: Api, inbox: Inbox, account: Account, *, nth: int = 1) -> str:
    """Ask for a reset link; its token (the `nth` reset mail to the account)."""
    await _forgot(api, account.email)
    # The first mail of every account is its verification.
    mail = (await inbox.wait_for(1 + nth, to=account.email))[nth]
    assert mail.subject == "Reset your Bazaar password"
    assert mail.link().startswith("http://test/account/reset-password?token=")
    return mail.token()


async def _reset(api: Api, token: str, password: str = NEW_PASSWORD) -> int:
    response = await api.client.post(
        "/auth/reset-password", json={"token": token, "password": password}
    )
    return response.status_code


async def test_a_reset_link_sets_a_new_password_once(api: Api, inbox: Inbox) -> None:
    account = await api.user()
    token = await _reset_token(api, inbox, account)

    assert await _reset(api, token) == 204
    assert (await api.login(account.email, NEW_PASSWORD)).status_code == 200
    assert (await api.login(account.email, account.password)).status_code == 401
    # Every session ended: the access and refresh tokens of before the reset are refused.
    me = await api.client.get("/users/me", headers=account.headers)
    assert me.status_code == 401
    refreshed = await api.client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": account.refresh_token}
    )
    assert refreshed.status_code == 401
    assert await api.count("sessions", "revoked_at IS NULL") == 1  # the new login's
    # The link reached the address: it is verified too.
    assert await api.count("users", "is_verified") == 1

    again = await api.client.post(
        "/auth/reset-password", json={"token": token, "password": "yet-another-tide"}
    )
    assert again.status_code == 400
    assert again.json() == INVALID
    assert (await api.login(account.email, NEW_PASSWORD)).status_code == 200


async def test_unknown_emails_get_the_same_answer_and_no_mail(api: Api, inbox: Inbox) -> None:
    account = await api.user()
    await inbox.wait_for(1, to=account.email)
    await _forgot(api, "nobody@example.com")
    await _forgot(api, account.email)
    await inbox.wait_for(2, to=account.email)
    await api.app.state.services.background.drain()
    assert [mail.to for mail in inbox.mails()] == [account.email, account.email]
    assert await api.count("outbox") == 2


async def test_a_newer_link_ends_the_older(api: Api, inbox: Inbox) -> None:
    account = await api.user()
    older = await _reset_token(api, inbox, account, nth=1)
    newer = await _reset_token(api, inbox, account, nth=2)
    assert await _reset(api, older) == 400
    assert await _reset(api, newer) == 204


async def test_a_password_change_ends_the_link(api: Api, inbox: Inbox) -> None:
    account = await api.user()
    token = await _reset_token(api, inbox, account)
    response = await api.client.patch(
        "/users/me",
        json={"password": "changed-by-hand-1", "current_password": account.password},
        headers=account.headers,
    )
    assert response.status_code == 200
    assert await _reset(api, token) == 400
    assert (await api.login(account.email, "changed-by-hand-1")).status_code == 200


async def test_an_expired_link_is_dead(api: Api, inbox: Inbox) -> None:
    account = await api.user()
    token = await _reset_token(api, inbox, account)
    # An hour has passed.
    await api.sql("UPDATE one_time_tokens SET expires_at = created_at")
    assert await _reset(api, token) == 400
    assert (await api.login(account.email, account.password)).status_code == 200


async def test_a_link_sent_before_an_email_change_is_dead(api: Api, inbox: Inbox) -> None:
    account = await api.user()
    token = await _reset_token(api, inbox, account)
    response = await api.client.patch(
        "/users/me",
        json={"email": "moved@example.com", "current_password": account.password},
        headers=account.headers,
    )
    assert response.status_code == 200
    assert await _reset(api, token) == 400


async def test_deactivated_users_get_no_link(api: Api, inbox: Inbox) -> None:
    account = await api.user()
    await api.sql("UPDATE users SET is_active = false WHERE id = :id", id=account.id)
    await _forgot(api, account.email)
    await api.app.state.services.background.drain()
    assert await api.count("outbox", "subject LIKE 'Reset%'") == 0


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 8 characters"),
        ("password123", "commonly used"),
        ("user-{email}", "email"),
    ],
)
async def test_the_new_password_follows_the_rules(
    api: Api, inbox: Inbox, password: str, problem: str
) -> None:
    account = await api.user()
    token = await _reset_token(api, inbox, account)
    response = await api.client.post(
        "/auth/reset-password",
        json={"token": token, "password": password.format(email=account.email)},
    )
    assert response.status_code == 422
    assert problem in response.text
    # The link was not used up by a refused password.
    assert await _reset(api, token) == 204


async def test_forgot_password_is_throttled_per_email_whether_or_not_it_exists(
    api: Api, inbox: Inbox
) -> None:
    account = await api.user()
    for email in (account.email, "nobody@example.com"):
        statuses = []
        for _ in range(4):
            response = await api.client.post("/auth/forgot-password", json={"email": email})
            statuses.append(response.status_code)
        assert statuses == [202, 202, 202, 429]
        assert int(response.headers["retry-after"]) > 0
    # Case and spaces make no new budget.
    response = await api.client.post(
        "/auth/forgot-password", json={"email": f"  {account.email.upper()} "}
    )
    assert response.status_code == 429


async def test_forgot_password_is_throttled_per_address(api: Api) -> None:
    statuses = []
    for n in range(21):
        response = await api.client.post(
            "/auth/forgot-password", json={"email": f"n{n}@example.com"}
        )
        statuses.append(response.status_code)
    assert statuses == [202] * 20 + [429]


async def test_known_and_unknown_emails_take_about_as_long(
    api: Api, inbox: Inbox, settings: Settings
) -> None:
    """The look-up and the mail happen after the answer: both answers cost the same.

    Timed as the login test does (medians, a wide margin); the figures show with `-s`.
    """
    generous = settings.model_copy(
        update={"limit_mail_email": "1000/hour", "limit_mail_address": "1000/hour"}
    )
    api.use(throttle=Throttle(generous))
    accounts = [await api.user() for _ in range(3)]
    known: list[float] = []
    unknown: list[float] = []
    for n in range(9):
        for email, times in (
            (accounts[n % 3].email, known),
            (f"nobody-{n}@example.com", unknown),
        ):
            started = time.perf_counter()
            await _forgot(api, email)
            times.append(time.perf_counter() - started)
            # Each request's background work ends before the next is timed.
            await api.app.state.services.background.drain()
    known_median, unknown_median = sorted(known)[4], sorted(unknown)[4]
    print(
        f"\nforgot-password median: known {known_median * 1000:.2f} ms, "
        f"unknown {unknown_median * 1000:.2f} ms"
    )
    assert 1 / 3 < unknown_median / known_median < 3
    await inbox.wait_for(3 + 9, within=60)
