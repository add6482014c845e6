"""A real SMTP server on 127.0.0.1 (aiosmtpd), whose inbox tests read."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.server import free_port


@dataclass
class Received:
    """One mail as the server took it."""

    message: EmailMessage
    envelope_to: list[str]
    # Whether the client logged in (AUTH) before sending it.
    authenticated: bool

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        content: str = self.message.get_content()
        return content

    def link(self) -> str:
        """The one Bazaar link in the body."""
        links = [word for word in self.body.split() if word.startswith("http")]
        assert len(links) == 1, self.body
        return links[0]

    def token(self) -> str:
        return self.link().partition("?token=")[2]


@dataclass
class Inbox:
    """What the server received, in order; safe to read from the tests' thread."""

    port: int
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.received.append(
                Received(message, list(envelope.rcpt_tos), bool(session.authenticated))
            )
        return "250 OK"

    def mails(self, to: str | None = None) -> list[Received]:
        with self._lock:
            return [mail for mail in self.received if to is None or mail.to == to]

    async def wait_for(
        self, count: int, *, to: str | None = None, within: float = 30
    ) -> list[Received]:
        """The mails (to `to`) once there are `count` of them; fails past `within` seconds."""
        deadline = time.monotonic() + within
        while len(mails := self.mails(to)) < count:
            assert time.monotonic() < deadline, f"{len(mails)} mails of {count} after {within} s"
            await asyncio.sleep(0.02)
        return mails

    def wait_for_sync(
        self, count: int, *, to: str | None = None, timeout: float = 60
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(mails := self.mails(to)) < count:
            assert time.monotonic() < deadline, f"{len(mails)} mails of {count} after {timeout} s"
            time.sleep(0.05)
        return mails


@contextmanager
def smtp_server(inbox: Inbox) -> Iterator[Controller]:
    """aiosmtpd serving `inbox` on its port until the block ends."""
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port, auth_require_tls=True)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@contextmanager
def running_inbox() -> Iterator[Inbox]:
    inbox = Inbox(free_port())
    with smtp_server(inbox):
        yield inbox
