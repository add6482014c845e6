"""Where a change comes from: the request's client address and signed-in user.

A request's changes are recorded by services that know nothing of HTTP: what they
need of the request is put in a context variable by `Attributed`, the middleware,
and the actor by whatever authenticated the request (`act_as`).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass(slots=True)
class Attribution:
    """The client address of the request being served, and who signed in to make it."""

    address: str | None = None
    actor_id: int | None = None


_NOWHERE = Attribution()
_current: ContextVar[Attribution] = ContextVar("audit_attribution", default=_NOWHERE)


def attribution() -> Attribution:
    """The current request's attribution; empty outside a request (the command line)."""
    return _current.get()


def act_as(user_id: int) -> None:
    """Changes made from here on in this request are `user_id`'s."""
    current = _current.get()
    if current is not _NOWHERE:
        current.actor_id = user_id


class Attributed:
    """Gives each request an `Attribution` of its own, with the client's address.

    Inside `ClientAddress`, so that the address is the one a trusted proxy forwarded.
    The attribution is mutable, and set here rather than where the user is known: a
    dependency's `ContextVar.set` is not guaranteed to reach the route that follows.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        token = _current.set(Attribution(client[0] if client else None))
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
