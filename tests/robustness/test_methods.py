"""A method a resource lacks is a 405 whose `Allow` lists those it has; HEAD is served as GET."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from starlette.routing import BaseRoute

from tests.factories import Api
from tests.ops.promtext import requests


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_users_me_is_not_taken_for_a_user_id(api: Api, method: str) -> None:
    user = await api.user()
    response = await api.client.request(method, "/users/me", headers=user.headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH"
    assert await api.count("users") == 1


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/users", "GET, POST"),
        ("/users/me", "GET, PATCH"),
        ("/users/1", "DELETE, GET, PATCH, PUT"),
        ("/users/1/items", "GET"),
        ("/items", "GET, POST"),
        ("/items/1", "DELETE, GET, PATCH"),
        ("/auth/token", "POST"),
        ("/health", "GET"),
    ],
)
@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "PUT", "POST", "DELETE"])
async def test_allow_lists_every_method_of_the_resource(
    api: Api, path: str, allow: str, method: str
) -> None:
    if method in allow.split(", "):
        return
    response = await api.client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {"detail": "Method Not Allowed"}


def _get_paths(app: FastAPI, ids: dict[str, int]) -> list[str]:
    """A concrete path for every GET route of the app, documented or not (the docs pages)."""
    paths = []
    for route in app.routes:
        if isinstance(route, BaseRoute) and "GET" in (getattr(route, "methods", None) or ()):
            template: str = getattr(route, "path_format")  # noqa: B009 - Route and APIRoute
            paths.append(re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m[1], 1)), template))
    return paths


async def test_every_get_route_answers_head_with_the_same_status_and_headers(
    api: Api, app: FastAPI
) -> None:
    admin = await api.user(admin=True)
    item = await api.item(admin)
    paths = _get_paths(app, {"user_id": admin.id, "item_id": item["id"]})
    statuses = {}
    for path in paths:
        get = await api.client.get(path, headers=admin.headers)
        head = await api.client.head(path, headers=admin.headers)
        assert head.status_code == get.status_code, path
        assert head.content == b"", path
        assert "content-length" in head.headers, path
        unstable = {"date", "x-request-id"}
        if path == "/metrics":
            # Its body counts the requests so far, the GET among them: its length moves.
            unstable.add("content-length")
        assert _headers(head, unstable) == _headers(get, unstable), path
        statuses[path] = get.status_code
    # The routes were really served, not all refused alike.
    served = ["/items", f"/items/{item['id']}", "/users", "/users/me", f"/users/{admin.id}"]
    served += [f"/users/{admin.id}/items", "/health", "/metrics", "/openapi.json", "/docs"]
    assert {path: statuses[path] for path in served} == dict.fromkeys(served, 200)


def _headers(response: httpx.Response, leave_out: set[str]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.multi_items() if k not in leave_out]


async def test_head_of_a_missing_item_is_a_bodiless_404(api: Api) -> None:
    get = await api.client.get("/items/424242")
    head = await api.client.head("/items/424242")
    assert (head.status_code, head.content) == (404, b"")
    assert head.headers["content-length"] == get.headers["content-length"] != "0"


async def test_head_is_not_allowed_where_get_is_not(api: Api) -> None:
    response = await api.client.head("/auth/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.content == b""


async def test_a_streamed_body_is_left_out_whole(api: Api, app: FastAPI) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for n in range(3):
            yield f"chunk {n}\n".encode()

    async def streamed() -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/plain")

    app.add_api_route("/test-streamed", streamed)
    get = await api.client.get("/test-streamed")
    head = await api.client.head("/test-streamed")
    assert get.text == "chunk 0\nchunk 1\nchunk 2\n"
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == "text/plain; charset=utf-8"


async def test_head_is_logged_and_counted_as_head_of_its_route(api: Api) -> None:
    owner = await api.user()
    item = await api.item(owner)
    assert (await api.client.head(f"/items/{item['id']}")).status_code == 200
    text = (await api.client.get("/metrics")).text
    assert requests(text, "/items/{item_id}", "HEAD", 200) == 1
    assert requests(text, "/items/{item_id}", "GET", 200) == 0


async def test_the_api_docs_list_no_head_operations(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert "get" in paths["/items/{item_id}"]
    assert not [path for path, operations in paths.items() if "head" in operations]
