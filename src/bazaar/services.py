"""The application's services: built once by the lifespan, read through one typed accessor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from bazaar.background import Background
    from bazaar.config import Settings
    from bazaar.db.engine import Sessionmakers
    from bazaar.db.executor import Executor
    from bazaar.db.gate import Gate
    from bazaar.db.replica import Replica
    from bazaar.mail.sender import MailSender
    from bazaar.ops.metrics import Metrics
    from bazaar.ops.readiness import Readiness
    from bazaar.pagination import Cursors
    from bazaar.security import Passwords, Tokens
    from bazaar.throttle import Throttle


@dataclass(frozen=True, slots=True)
class Services:
    """What routes and dependencies use, for the life of the application."""

    settings: Settings
    engine: AsyncEngine
    gate: Gate
    executor: Executor
    sessionmakers: Sessionmakers
    readiness: Readiness
    metrics: Metrics
    tokens: Tokens
    passwords: Passwords
    cursors: Cursors
    throttle: Throttle
    mail: MailSender
    background: Background
    # The streaming replica, when BAZAAR_DATABASE_REPLICA_URL names one.
    replica: Replica | None = None


def services(connection: HTTPConnection) -> Services:
    """The services of the application `connection` reached (once its lifespan started)."""
    found: Services = connection.app.state.services
    return found
