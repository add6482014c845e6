"""`X-Request-ID` on every response and in every log line of its request; lines no one can forge."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bazaar.app import create_app
from bazaar.config import Settings
from bazaar.logs import configure_logging
from tests.factories import Api

GENERATED = re.compile(r"[0-9a-f]{32}")


async def test_a_new_id_when_the_caller_sends_none(api: Api) -> None:
    first = await api.client.get("/health")
    second = await api.client.get("/health")
    assert GENERATED.fullmatch(first.headers["x-request-id"])
    assert GENERATED.fullmatch(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "sent",
    [
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "req-42",
        "Root=1-67891233-abcdef012345678912345678",
        "a" * 128,
    ],
)
async def test_the_callers_own_id_comes_back(api: Api, sent: str) -> None:
    response = await api.client.get("/health", headers={"X-Request-ID": sent})
    assert response.headers.get_list("x-request-id") == [sent]


@pytest.mark.parametrize(
    "sent",
    [b"", b"a" * 129, b"two words", b'quote"d', b"new\\nline", b"caf\xc3\xa9", b"<script>"],
)
async def test_an_unsafe_id_is_replaced(api: Api, sent: bytes) -> None:
    response = await api.client.get("/health", headers=[(b"X-Request-ID", sent)])
    assert GENERATED.fullmatch(response.headers["x-request-id"])


async def test_error_responses_carry_an_id_too(api: Api, app: FastAPI) -> None:
    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-broken", broken)
    responses = [
        await api.client.get("/no/such/path"),
        await api.client.request("BREW", "/health"),
        await api.client.post("/users/", json={}),
        await api.client.get("/users/me"),
        await api.client.get("/test-broken"),
    ]
    assert [r.status_code for r in responses] == [404, 405, 422, 401, 500]
    for response in responses:
        assert GENERATED.fullmatch(response.headers["x-request-id"])


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes the process's loggers: put pytest's back afterwards."""
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy"]
    names += ["sqlalchemy.engine", "sqlalchemy.engine.Engine"]
    saved = {
        name: (logger.handlers[:], logger.level, logger.propagate)
        for name in names
        for logger in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@dataclass
class Logged:
    app: FastAPI
    stream: io.StringIO

    def lines(self) -> list[str]:
        """What was logged since the last call, less the test client's own lines."""
        text = self.stream.getvalue()
        self.stream.seek(0)
        self.stream.truncate()
        return [
            line for line in text.splitlines() if " httpx " not in line and '"httpx"' not in line
        ]


@pytest.fixture
async def logged(
    settings: Settings, restore_logging: None, request: pytest.FixtureRequest
) -> AsyncIterator[Logged]:
    """An app whose process logs as `bazaar serve` would (configured before the engine exists)."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    settings = settings.model_copy(update=overrides)
    configure_logging(settings)
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    app = create_app(settings)

    async def chatty() -> dict[str, str]:
        logging.getLogger("bazaar.test").warning("hello from the route")
        return {}

    app.add_api_route("/test-chatty", chatty)
    async with app.router.lifespan_context(app):
        stream.seek(0)
        stream.truncate()
        yield Logged(app, stream)


async def _get(app: FastAPI, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, **kwargs)


@pytest.mark.parametrize("logged", [{"log_format": "text"}], indirect=True)
async def test_every_log_line_of_a_request_carries_its_id(logged: Logged) -> None:
    response = await _get(logged.app, "/test-chatty", headers={"X-Request-ID": "trace-me-1"})
    assert response.status_code == 200
    lines = logged.lines()
    assert len(lines) == 2
    assert "WARNING bazaar.test [trace-me-1] hello from the route" in lines[0]
    assert "INFO bazaar.access [trace-me-1] GET /test-chatty 200 " in lines[1]
    assert lines[1].endswith("ms route=/test-chatty")


@pytest.mark.parametrize("logged", [{"log_format": "json"}], indirect=True)
async def test_json_logs_are_one_object_a_line(logged: Logged) -> None:
    response = await _get(logged.app, "/items/424242")
    assert response.status_code == 404
    entries = [json.loads(line) for line in logged.lines()]
    assert len(entries) == 1
    access = entries[0]
    assert access["logger"] == "bazaar.access"
    assert access["level"] == "info"
    assert access["request_id"] == response.headers["x-request-id"]
    assert access["method"] == "GET"
    assert access["route"] == "/items/{item_id}"
    assert access["path"] == "/items/424242"
    assert access["status"] == 404
    assert 0 < access["duration_ms"] < 10_000


@pytest.mark.parametrize("logged", [{"log_format": "json"}], indirect=True)
async def test_an_unhandled_error_is_logged_with_the_request_id(logged: Logged) -> None:
    async def broken() -> None:
        raise RuntimeError("a bug")

    logged.app.add_api_route("/test-broken", broken)
    response = await _get(logged.app, "/test-broken")
    assert response.status_code == 500
    entries = [json.loads(line) for line in logged.lines()]
    rid = response.headers["x-request-id"]
    assert [(e["logger"], e["request_id"]) for e in entries] == [
        ("bazaar", rid),
        ("bazaar.access", rid),
    ]
    assert "RuntimeError: a bug" in entries[0]["exception"]
    assert entries[1]["status"] == 500


@pytest.mark.parametrize("logged", [{"sql_echo": True}], indirect=True)
async def test_sql_echo_logs_statements_once_with_the_request_id(logged: Logged) -> None:
    response = await _get(logged.app, "/items/1", headers={"X-Request-ID": "sql-1"})
    assert response.status_code == 404
    lines = logged.lines()
    statements = [line for line in lines if "SELECT" in line]
    assert statements
    assert all("sqlalchemy.engine.Engine [sql-1]" in line for line in statements)
    # SQLAlchemy gives an echoing engine a stdout handler of its own unless the logger
    # has one: that would print every statement a second time, without the request id.
    engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
    assert all(isinstance(h, logging.NullHandler) for h in engine_logger.handlers)


@pytest.mark.parametrize("logged", [{"sql_echo": False}], indirect=True)
async def test_no_sql_in_the_logs_without_echo(logged: Logged) -> None:
    response = await _get(logged.app, "/items/1")
    assert response.status_code == 404
    lines = logged.lines()
    assert not [line for line in lines if "SELECT" in line]
    assert len(lines) == 1
    assert "GET /items/1 404" in lines[0]


# What a client sends (percent-encoded, as on the wire) and how its text log line shows it.
FORGERIES = [
    pytest.param(
        "/items/x%0a2026-01-01 12:00:00,000 INFO bazaar.access [-] GET /admin 200",
        r"/items/x\n2026-01-01 12:00:00,000 INFO bazaar.access [-] GET /admin 200",
        id="newline",
    ),
    pytest.param("/items/x%0d%0ay", r"/items/x\r\ny", id="crlf"),
    pytest.param("/items/x%1b[31mred%1b[0m", r"/items/x\u001b[31mred\u001b[0m", id="esc"),
    pytest.param(
        "/items/%00%07%7f%c2%85%c2%9b", r"/items/\u0000\u0007\u007f\u0085\u009b", id="c0-del-c1"
    ),
    pytest.param("/items/a%e2%80%a8b%e2%80%a9c", r"/items/a\u2028b\u2029c", id="separators"),
    # A backslash is escaped too: the client cannot write what an escape would look like.
    pytest.param("/items/x%5cn2026", r"/items/x\\n2026", id="backslash"),
    pytest.param("/items/caf%c3%a9 %e2%82%ac", "/items/café €", id="printable"),
]


@pytest.mark.parametrize(("sent", "shown"), FORGERIES)
@pytest.mark.parametrize("logged", [{"log_format": "text"}], indirect=True)
async def test_a_path_cannot_forge_a_text_log_line(logged: Logged, sent: str, shown: str) -> None:
    response = await _get(logged.app, sent, headers={"X-Request-ID": "forge-1"})
    # Split as `str.splitlines` splits: at C1 NEL and the Unicode separators too.
    lines = logged.lines()
    assert len(lines) == 1, lines
    assert lines[0].isprintable()
    expected = f" INFO bazaar.access [forge-1] GET {shown} {response.status_code} "
    assert expected in lines[0]
    assert re.search(r" \d+\.\dms route=(unmatched|/items/\{item_id\})$", lines[0])


@pytest.mark.parametrize(("sent", "_shown"), FORGERIES)
@pytest.mark.parametrize("logged", [{"log_format": "json"}], indirect=True)
async def test_a_json_log_line_holds_the_path_as_sent(
    logged: Logged, sent: str, _shown: str
) -> None:
    await _get(logged.app, sent)
    lines = logged.lines()
    assert len(lines) == 1, lines
    assert lines[0].isascii()
    assert lines[0].isprintable()
    assert json.loads(lines[0])["path"] == unquote(sent)


@pytest.mark.parametrize("logged", [{"log_format": "text"}], indirect=True)
async def test_a_traceback_keeps_its_lines_below_an_escaped_message(logged: Logged) -> None:
    async def broken(_anything: str) -> None:
        raise RuntimeError("a bug")

    logged.app.add_api_route("/test-broken/{_anything}", broken)
    response = await _get(logged.app, "/test-broken/x%0ay", headers={"X-Request-ID": "tb-1"})
    assert response.status_code == 500
    lines = logged.lines()
    assert lines[0].endswith(r" ERROR bazaar [tb-1] unhandled error in GET /test-broken/x\ny")
    assert lines[1] == "Traceback (most recent call last):"
    assert "RuntimeError: a bug" in lines
    assert r"INFO bazaar.access [tb-1] GET /test-broken/x\ny 500 " in lines[-1]


@pytest.mark.parametrize("logged", [{"sql_echo": False}], indirect=True)
async def test_a_database_error_names_no_sql_parameters_without_echo(logged: Logged) -> None:
    engine = logged.app.state.services.engine
    insert_user = text(
        "INSERT INTO users (name, email, hashed_password) VALUES (:name, :email, :hashed)"
    )
    values = {"name": "Param Name 7d1e", "email": "param-7d1e@example.com", "hashed": "h-7d1e"}
    async with engine.begin() as connection:
        await connection.execute(insert_user, values)
    with pytest.raises(IntegrityError) as failed:
        async with engine.begin() as connection:
            await connection.execute(insert_user, values | {"name": "Other Name 7d1e"})
    message = str(failed.value)
    assert "INSERT INTO users" in message
    assert "Other Name 7d1e" not in message
    assert "h-7d1e" not in message
