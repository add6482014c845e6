"""Account tests talk to a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.smtp import Inbox, running_inbox


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with running_inbox() as inbox:
        yield inbox


@pytest.fixture
def settings_overrides(inbox: Inbox) -> dict[str, Any]:
    # The sender looks at the outbox often, so that a test never waits long for a mail.
    return {"smtp_url": inbox.url, "mail_poll_seconds": 0.2, "mail_retry_seconds": 0.2}
