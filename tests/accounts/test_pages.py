"""The pages the mails link to: GET shows, only POST acts; no referrer, no script."""

from __future__ import annotations

import re

import httpx

from tests.factories import Api
from tests.smtp import Inbox


def _assert_safe_page(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert "<script" not in response.text
    # Nothing from elsewhere: no absolute URL in any attribute.
    assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", response.text)


async def _link(api: Api, inbox: Inbox, *, forgot: bool) -> tuple[str, str]:
    """(email, path and query of the link) of a new account's verification or reset mail."""
    account = await api.user()
    if forgot:
        response = await api.client.post("/auth/forgot-password", json={"email": account.email})
        assert response.status_code == 202
        mail = (await inbox.wait_for(2, to=account.email))[1]
    else:
        mail = (await inbox.wait_for(1, to=account.email))[0]
    return account.email, mail.link().removeprefix("http://test")


async def test_the_verification_page_shows_a_button_and_only_post_verifies(
    api: Api, inbox: Inbox
) -> None:
    _, link = await _link(api, inbox, forgot=False)
    token = link.partition("token=")[2]
    for _ in range(3):  # a mail scanner, a preview, the person
        page = await api.client.get(link)
        assert page.status_code == 200
        _assert_safe_page(page)
        assert '<button type="submit">Verify my email</button>' in page.text
        assert f'name="token" value="{token}"' in page.text
    assert await api.count("users", "is_verified") == 0

    done = await api.client.post("/account/verify-email", data={"token": token})
    assert done.status_code == 200
    _assert_safe_page(done)
    assert "your email is verified" in done.text
    assert await api.count("users", "is_verified") == 1

    again = await api.client.get(link)
    assert again.status_code == 400
    assert "This link is invalid or has expired." in again.text
    assert "<form" not in again.text
    reused = await api.client.post("/account/verify-email", data={"token": token})
    assert reused.status_code == 400


async def test_the_reset_page_shows_a_form_and_only_post_resets(api: Api, inbox: Inbox) -> None:
    email, link = await _link(api, inbox, forgot=True)
    token = link.partition("token=")[2]
    page = await api.client.get(link)
    assert page.status_code == 200
    _assert_safe_page(page)
    assert 'type="password"' in page.text
    assert (await api.login(email, "correct-horse")).status_code == 200

    # A password the rules refuse: the form again, saying why; the link still works.
    weak = await api.client.post(
        "/account/reset-password", data={"token": token, "password": "password123"}
    )
    assert weak.status_code == 422
    assert "commonly used" in weak.text
    assert f'value="{token}"' in weak.text

    done = await api.client.post(
        "/account/reset-password", data={"token": token, "password": "a-new-tide-rising"}
    )
    assert done.status_code == 200
    _assert_safe_page(done)
    assert "Your password is changed" in done.text
    assert (await api.login(email, "a-new-tide-rising")).status_code == 200
    assert (await api.login(email, "correct-horse")).status_code == 401

    dead = await api.client.post(
        "/account/reset-password", data={"token": token, "password": "another-tide-rising"}
    )
    assert dead.status_code == 400
    assert "This link is invalid or has expired." in dead.text


async def test_pages_of_unknown_links_say_so(api: Api) -> None:
    for path in ("/account/verify-email", "/account/reset-password"):
        for query in ("", "?token=", "?token=" + "A" * 43):
            page = await api.client.get(path + query)
            assert page.status_code == 400
            _assert_safe_page(page)
            assert "This link is invalid or has expired." in page.text
