"""`/docs` and `/redoc` work offline: every asset they load comes from Bazaar itself."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bazaar.app import create_app
from bazaar.config import Settings
from tests.conftest import SECRET

# Anything the page could fetch: src=, href=, spec-url=, url: '...', url(...).
_REFERENCE = re.compile(r"""(?:src|href|spec-url)="([^"]+)"|url: '([^']+)'|url\(([^)]+)\)""")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that never starts: the docs need no database, on any backend."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", secret_key=SECRET)
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def _references(html: str) -> list[str]:
    return [next(group for group in match.groups() if group) for match in _REFERENCE.finditer(html)]


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"}),
        ("/redoc", {"/docs/assets/redoc.standalone.js"}),
    ],
)
async def test_docs_pages_load_only_local_assets(
    client: httpx.AsyncClient, page: str, assets: set[str]
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    references = _references(response.text)
    assert assets <= set(references)
    assert "/openapi.json" in references
    assert all(reference.startswith("/") for reference in references), references
    assert "https://" not in response.text
    assert "http://" not in response.text
    # And the browser is told to load nothing from elsewhere, whatever the scripts ask.
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "http" not in policy
    for reference in references:
        asset = await client.get(reference)
        assert asset.status_code == 200, reference


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/docs/assets/swagger-ui-bundle.js", "text/javascript", "SwaggerUIBundle"),
        ("/docs/assets/swagger-ui.css", "text/css", ".swagger-ui"),
        ("/docs/assets/redoc.standalone.js", "text/javascript", "Redoc"),
    ],
)
async def test_assets_are_the_real_thing(
    client: httpx.AsyncClient, path: str, content_type: str, marker: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert len(response.content) > 100_000
    assert marker in response.text
    assert "etag" in response.headers


async def test_swagger_ui_is_wired_for_oauth2_password_login(client: httpx.AsyncClient) -> None:
    page = (await client.get("/docs")).text
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in page
    redirect = await client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "oauth2" in redirect.text
    schema = (await client.get("/openapi.json")).json()
    flows = [scheme["flows"] for scheme in schema["components"]["securitySchemes"].values()]
    assert {"password": {"scopes": {}, "tokenUrl": "/auth/token"}} in flows


async def test_docs_routes_stay_out_of_the_schema(client: httpx.AsyncClient) -> None:
    paths = set((await client.get("/openapi.json")).json()["paths"])
    assert {"/health", "/ready", "/metrics", "/users", "/items"} <= paths
    assert not {path for path in paths if path.startswith(("/docs", "/redoc"))}
