"""The account pages in headless Chromium: open the link from the mail, submit, sign in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.ops.test_browser import CHROMIUM_ARGS, Traffic, _chromium
from tests.server import LiveServer, live_server
from tests.smtp import Inbox

pytestmark = pytest.mark.slow

EMAIL = "reader@example.com"
OLD_PASSWORD = "quiet-lantern-1"
NEW_PASSWORD = "typed-in-chromium-7"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def server(tmp_path: Path, inbox: Inbox) -> Iterator[LiveServer]:
    with live_server(tmp_path, env={"BAZAAR_SMTP_URL": inbox.url}) as server:
        yield server


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, Traffic]]:
    traffic = Traffic()
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(20_000)
    context.route("**/*", traffic.route)
    page = context.new_page()
    page.on("request", lambda request: traffic.requested.append(request.url))
    page.on("requestfinished", traffic.finished)
    page.on("requestfailed", traffic.failed)
    yield page, traffic
    context.close()
    # Nothing but Bazaar's own pages was asked for: no script, style or font from elsewhere.
    assert traffic.foreign_finished == []
    assert traffic.aborted == []
    assert traffic.blocked == {}
    assert {urlsplit(url).hostname for url in traffic.requested} == {"127.0.0.1"}


def _open(page: Page, link: str) -> None:
    response = page.goto(link)
    assert response is not None
    assert response.status == 200
    assert response.headers["referrer-policy"] == "no-referrer"


def test_verify_then_reset_by_the_mailed_links_and_sign_in(
    server: LiveServer, inbox: Inbox, page: tuple[Page, Traffic], tmp_path: Path
) -> None:
    browser_page, _ = page
    with httpx.Client(base_url=server.url) as client:
        body = {"name": "Reader", "email": EMAIL, "password": OLD_PASSWORD}
        assert client.post("/users/", json=body).status_code == 201
        login = client.post("/auth/token", data={"username": EMAIL, "password": OLD_PASSWORD})
        old_headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

        # The verification link, as the mail gives it (it names the server's public URL).
        (verification,) = inbox.wait_for_sync(1, to=EMAIL)
        assert verification.link().startswith(f"{server.url}/account/verify-email?token=")
        _open(browser_page, verification.link())
        browser_page.get_by_role("button", name="Verify my email").click()
        browser_page.get_by_text("your email is verified").wait_for()
        assert client.get("/users/me", headers=old_headers).json()["is_verified"] is True

        assert client.post("/auth/forgot-password", json={"email": EMAIL}).status_code == 202
        reset = inbox.wait_for_sync(2, to=EMAIL)[1]
        _open(browser_page, reset.link())
        browser_page.get_by_label("New password").fill(NEW_PASSWORD)
        browser_page.get_by_role("button", name="Set my new password").click()
        browser_page.get_by_text("Your password is changed").wait_for()
        browser_page.screenshot(path=tmp_path / "password-changed.png")

        login = client.post("/auth/token", data={"username": EMAIL, "password": NEW_PASSWORD})
        assert login.status_code == 200
        new_headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert client.get("/users/me", headers=new_headers).json()["email"] == EMAIL
        old_login = client.post("/auth/token", data={"username": EMAIL, "password": OLD_PASSWORD})
        assert old_login.status_code == 401
        assert client.get("/users/me", headers=old_headers).status_code == 401

        # The link is used up: opened again, it says so and offers no form.
        response = browser_page.goto(reset.link())
        assert response is not None
        assert response.status == 400
        assert browser_page.get_by_text("This link is invalid or has expired.").is_visible()
        assert browser_page.locator("form").count() == 0
