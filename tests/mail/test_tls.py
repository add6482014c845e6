"""SMTP over TLS: `smtps://` from the first byte, `smtp://` upgraded by STARTTLS; the
credentials in the URL go to the server only then, and the server's certificate is checked."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bazaar.mail.sender import SMTPTransport
from tests.server import free_port
from tests.smtp import Inbox


@dataclass
class Logins:
    """What clients logged in with; every login succeeds."""

    seen: list[tuple[str, str]] = field(default_factory=list)

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.seen.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=True)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate, key)."""
    openssl = shutil.which("openssl")
    assert openssl, "these tests make their certificate with the openssl command"
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(  # noqa: S603 - our own command line
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def trusted(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Bazaar's client trusts the test certificate, as it would a real CA's."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Bazaar <no-reply@localhost>"
    message["To"] = "someone@example.com"
    message["Subject"] = "Over TLS"
    message["Message-ID"] = "<tls@test>"
    message.set_content("Hello")
    return message


@pytest.fixture
def logins() -> Logins:
    return Logins()


def _serve(inbox: Inbox, logins: Logins, **tls: Any) -> Iterator[Inbox]:
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=inbox.port,
        authenticator=logins,
        **tls,
    )
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def starttls_server(server_context: ssl.SSLContext, logins: Logins) -> Iterator[Inbox]:
    """A submission server that offers STARTTLS and requires it."""
    yield from _serve(Inbox(free_port()), logins, tls_context=server_context, require_starttls=True)


@pytest.fixture
def tls_server(server_context: ssl.SSLContext, logins: Logins) -> Iterator[Inbox]:
    """A server that speaks TLS from the first byte (port 465's way)."""
    # aiosmtpd counts only STARTTLS as TLS for AUTH: the whole connection is TLS here.
    yield from _serve(
        Inbox(free_port()), logins, ssl_context=server_context, auth_require_tls=False
    )


async def _send(url: str) -> None:
    async with SMTPTransport(url, timeout=10).connect() as send:
        await send(_message())


@pytest.mark.usefixtures("trusted")
async def test_smtp_upgrades_with_starttls_then_logs_in(
    starttls_server: Inbox, logins: Logins
) -> None:
    await _send(f"smtp://mailer:p%40ss@127.0.0.1:{starttls_server.port}")
    (mail,) = starttls_server.mails()
    assert mail.authenticated
    assert logins.seen == [("mailer", "p@ss")]


@pytest.mark.usefixtures("trusted")
async def test_smtps_speaks_tls_from_the_start(tls_server: Inbox, logins: Logins) -> None:
    await _send(f"smtps://mailer:secret@127.0.0.1:{tls_server.port}")
    (mail,) = tls_server.mails()
    assert mail.authenticated
    assert logins.seen == [("mailer", "secret")]


async def test_a_certificate_nobody_vouches_for_is_refused(
    starttls_server: Inbox, logins: Logins
) -> None:
    with pytest.raises((ssl.SSLError, aiosmtplib.SMTPException)):
        await _send(f"smtp://mailer:secret@127.0.0.1:{starttls_server.port}")
    assert starttls_server.mails() == []
    assert logins.seen == []
