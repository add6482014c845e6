"""`/docs` in headless Chromium with no way out of 127.0.0.1: list, sign up, authorize, read."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, Route, sync_playwright

from tests.server import LiveServer, live_server

# Debian's chromium, run as root here; no browser download (`playwright install`) anywhere.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    # Every host name but 127.0.0.1 fails to resolve, so nothing can leave the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-sync",
    "--no-first-run",
    "--no-pings",
]
EMAIL = "browser@example.com"
PASSWORD = "typed-in-swagger"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but Chromium is missing: run .ci/install-browser.sh")
    pytest.skip("needs Chromium: `apt-get install chromium` (see .ci/install-browser.sh)")


@dataclass
class Traffic:
    """What the page asked for; whatever is not for 127.0.0.1 is noted, and aborted."""

    requested: list[str] = field(default_factory=list)
    # Reached the network layer, where this test aborted it.
    aborted: list[str] = field(default_factory=list)
    # Stopped by the browser itself before the network (by the page's CSP): url -> why.
    blocked: dict[str, str] = field(default_factory=dict)
    foreign_finished: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        if _local(route.request.url):
            route.continue_()
        else:
            self.aborted.append(route.request.url)
            route.abort()

    def failed(self, request: Request) -> None:
        if not _local(request.url):
            self.blocked[request.url] = request.failure or "?"

    def finished(self, request: Request) -> None:
        if not _local(request.url):
            self.foreign_finished.append(request.url)


def _local(url: str) -> bool:
    return urlsplit(url).hostname == "127.0.0.1"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("browser")) as server:
        yield server


@pytest.fixture
def page_and_traffic(browser: Browser) -> Iterator[tuple[Page, Traffic]]:
    traffic = Traffic()
    context = browser.new_context()
    context.set_default_timeout(20_000)
    context.route("**/*", traffic.route)
    page = context.new_page()
    page.on("request", lambda request: traffic.requested.append(request.url))
    page.on("requestfinished", traffic.finished)
    page.on("requestfailed", traffic.failed)
    page.on(
        "console",
        lambda message: (
            traffic.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    yield page, traffic
    context.close()
    # No request to another host succeeded; none even reached the network.
    assert traffic.foreign_finished == []
    assert traffic.aborted == []
    assert set(traffic.blocked.values()) <= {"csp"}, traffic.blocked


def _operation(page: Page, method: str, path: str) -> Page:
    block = page.locator(f".opblock.opblock-{method}", has=page.locator(f'[data-path="{path}"]'))
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    return block  # type: ignore[return-value]


def test_swagger_ui_lists_the_api_and_signs_up_with_try_it_out(
    server: LiveServer, page_and_traffic: tuple[Page, Traffic], tmp_path: Path
) -> None:
    page, traffic = page_and_traffic
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".opblock")
    listed = page.evaluate(
        """Array.from(document.querySelectorAll('.opblock')).map(block => [
            block.querySelector('.opblock-summary-method').textContent,
            block.querySelector('.opblock-summary-path').getAttribute('data-path')])"""
    )
    operations = {(method, path) for method, path in listed}
    assert {
        ("POST", "/auth/token"),
        ("POST", "/users"),
        ("GET", "/users/me"),
        ("GET", "/items"),
        ("GET", "/items/{item_id}"),
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/metrics"),
    } <= operations
    assert f"{server.url}/docs/assets/swagger-ui-bundle.js" in traffic.requested

    # Try it out: POST /users with a body typed into the editor.
    sign_up = _operation(page, "post", "/users")
    body = {"name": "Swagger User", "email": EMAIL, "password": PASSWORD}
    sign_up.locator("textarea.body-param__text").fill(json.dumps(body))
    sign_up.get_by_role("button", name="Execute").click()
    status = sign_up.locator(".live-responses-table .response .response-col_status").first
    assert status.inner_text().strip() == "201"

    # Authorize (the OAuth2 password flow against /auth/token), then GET /users/me.
    page.locator(".auth-wrapper .authorize").click()
    page.fill("#oauth_username", EMAIL)
    page.fill("#oauth_password", PASSWORD)
    page.locator(".auth-btn-wrapper .authorize").click()
    page.wait_for_selector(".auth-btn-wrapper .btn-done")
    page.locator(".auth-btn-wrapper .btn-done").click()
    me = _operation(page, "get", "/users/me")
    me.get_by_role("button", name="Execute").click()
    status = me.locator(".live-responses-table .response .response-col_status").first
    assert status.inner_text().strip() == "200"
    answer = me.locator(".live-responses-table .response .response-col_description")
    assert EMAIL in answer.inner_text()
    me.screenshot(path=tmp_path / "users-me.png")
    # Swagger UI does not even try another host.
    assert traffic.blocked == {}
    assert {urlsplit(url).hostname for url in traffic.requested} == {"127.0.0.1"}
    assert traffic.console_errors == []

    # The user exists, for the API as for the browser.
    token = httpx.post(
        f"{server.url}/auth/token", data={"username": EMAIL, "password": PASSWORD}
    ).json()["access_token"]
    account = httpx.get(f"{server.url}/users/me", headers={"Authorization": f"Bearer {token}"})
    assert account.status_code == 200
    assert account.json()["name"] == "Swagger User"


def test_redoc_renders_offline(server: LiveServer, page_and_traffic: tuple[Page, Traffic]) -> None:
    page, traffic = page_and_traffic
    page.goto(f"{server.url}/redoc")
    page.locator("h2", has_text="Create User").wait_for()
    assert page.locator("h1", has_text="Bazaar").is_visible()
    assert page.locator("h2", has_text="Health").is_visible()
    assert f"{server.url}/docs/assets/redoc.standalone.js" in traffic.requested
    # ReDoc always shows its vendor's logo from a CDN: the page's CSP stops that request
    # in the browser, and the logo is left out (it hides itself when it fails to load).
    assert set(traffic.blocked) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
