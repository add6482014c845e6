"""The HTTP/1.1 protocol `bazaar serve` speaks: uvicorn's httptools one, with bounded heads."""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

logger = logging.getLogger(__name__)

# The most a request line and its headers may take together. httptools has no limit of
# its own: a 32 MiB `Authorization` header was read whole (+55 MB resident) before the
# application had a say.
MAX_HEAD_BYTES = 64 * 1024


class _HeadTooLarge(Exception):
    """Raised from a parser callback: the only way to stop httptools in the middle of a head."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools, answering 414 or 431 to a request whose head is over `MAX_HEAD_BYTES`.

    The head is measured as the parser reports it: the URL piece by piece, each header
    once complete. A header still arriving is held by httptools out of sight, so the raw
    bytes of a head that has not ended yet are counted as well: nothing past the limit
    (and the read that crossed it) is kept. A head pipelined behind another request in
    the same read is only measured the first way until the next read.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._reading_head = True
        self._head_bytes = 0
        self._raw_head_bytes = 0
        self._refusal: HTTPStatus | None = None

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._raw_head_bytes += len(data)
        super().data_received(data)
        over = self._reading_head and self._raw_head_bytes > MAX_HEAD_BYTES
        if over and not self.transport.is_closing():
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)

    def on_url(self, url: bytes) -> None:
        self._count(len(url), HTTPStatus.REQUEST_URI_TOO_LONG)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # With the ": " and the line break, as a client writes them.
        self._count(len(name) + len(value) + 4, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # A keep-alive connection's next request starts with a fresh allowance.
        self._reading_head = True
        self._head_bytes = self._raw_head_bytes = 0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parser error with a 400, the one `_count` raised included.
        if self._refusal is not None:
            self._refuse(self._refusal)
        else:
            super().send_400_response(msg)

    def _count(self, size: int, status: HTTPStatus) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refusal = status
            raise _HeadTooLarge

    def _refuse(self, status: HTTPStatus) -> None:
        self._refusal = status
        logger.warning(
            "refused a request whose line and headers are over %d KiB: %d %s",
            MAX_HEAD_BYTES // 1024,
            status.value,
            status.phrase,
        )
        # An answer written while an earlier pipelined response is still going out would be
        # spliced into it: then the connection is only closed.
        if self.cycle is None or self.cycle.response_complete:
            body = f"The request line and headers take over {MAX_HEAD_BYTES // 1024} KiB.\n"
            lines = [f"HTTP/1.1 {status.value} {status.phrase}".encode("ascii")]
            lines += [name + b": " + value for name, value in self.server_state.default_headers]
            lines += [
                b"content-type: text/plain; charset=utf-8",
                b"content-length: %d" % len(body),
                b"connection: close",
                b"",
                body.encode("ascii"),
            ]
            self.transport.write(b"\r\n".join(lines))
        self.transport.close()
