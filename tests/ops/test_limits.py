"""`bazaar serve` refuses a request line and headers over 64 KiB before the app reads them."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from http.client import HTTPResponse

import httpx
import pytest

from tests.server import LiveServer, live_server

KIB = 1024
# Every read of a test waits no longer than this for the server.
SOCKET_TIMEOUT = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Two workers: each is a fresh interpreter that must be given the same protocol.
    with live_server(tmp_path_factory.mktemp("limits"), workers=2) as running:
        yield running


def connect(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT)


def request(target: str = "/health", padding: int = 0) -> bytes:
    """A GET of `target`, with an `X-Padding` header of `padding` bytes when asked."""
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1"]
    if padding:
        lines.append("X-Padding: " + "p" * padding)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def answer(sock: socket.socket) -> HTTPResponse:
    """The next response on `sock`, read whole."""
    response = HTTPResponse(sock)
    response.begin()
    response.read()
    return response


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_header_over_64_kib_gets_431_and_the_connection_is_closed(server: LiveServer) -> None:
    # Several connections, so that both workers take some.
    for _ in range(8):
        with connect(server) as sock:
            sock.sendall(request(padding=70 * KIB))
            response = HTTPResponse(sock)
            response.begin()
            assert response.status == 431
            assert response.getheader("connection") == "close"
            assert "64 KiB" in response.read().decode()
            assert closed_by_server(sock)
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}


def test_a_header_of_60_kib_is_served(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(request(padding=60 * KIB))
        response = answer(sock)
    assert response.status == 200


def test_a_keep_alive_connection_gives_each_request_its_own_allowance(server: LiveServer) -> None:
    with connect(server) as sock:
        for _ in range(5):
            # 200 KiB in all on one connection, 40 KiB a request.
            sock.sendall(request(padding=40 * KIB))
            assert answer(sock).status == 200


def test_a_large_body_sent_with_its_head_is_not_counted_as_head(server: LiveServer) -> None:
    body = json.dumps({"name": "n" * (600 * KIB), "email": "a@example.com", "password": "p"})
    head = (
        "POST /users/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with connect(server) as sock:
        # In one write, so that the server reads the head's end and the body together.
        sock.sendall((head + body).encode("ascii"))
        response = answer(sock)
    assert response.status == 422


def test_a_url_over_64_kib_is_refused(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(request("/items?q=" + "q" * (70 * KIB)))
        response = answer(sock)
    assert response.status == 414
    assert httpx.get(f"{server.url}/items", params={"q": "lamp"}).status_code == 200


def test_a_32_mib_header_is_cut_off_rather_than_read(server: LiveServer) -> None:
    size = 32 * 1024 * KIB
    chunk = b"a" * (64 * KIB)
    sent = 0
    with connect(server) as sock:
        sock.sendall(b"GET /users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ")
        try:
            while sent < size:
                sent += sock.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
    # What the kernel buffered on both sides is all that got through before the server
    # closed the connection: not the whole header.
    assert sent < size
    assert httpx.get(f"{server.url}/health").status_code == 200
