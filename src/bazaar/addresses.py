"""Who is calling, by address: the TCP peer, or the client a trusted proxy says it forwarded."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

Network = IPv4Network | IPv6Network

FORWARDED_FOR = b"x-forwarded-for"


def _is_trusted(address: IPv4Address | IPv6Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address: `peer`, unless it is a trusted proxy; then the right-most
    address of `X-Forwarded-For` (its values in order) that is not a trusted proxy.

    Only the entries that trusted proxies appended can be believed, and they are
    appended on the right: the first untrusted one from the right is the last hop a
    trusted proxy saw. Anything to its left is what the client chose to send. A chain
    of trusted proxies only (a call from inside) names its first hop; an entry that
    is not an address means the chain cannot be read, and the peer answers for it.
    """
    try:
        if not _is_trusted(ip_address(peer), trusted):
            return peer
    except ValueError:
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    address = None
    for hop in reversed(hops):
        try:
            address = ip_address(hop)
        except ValueError:
            return peer
        if not _is_trusted(address, trusted):
            return str(address)
    # Every hop a trusted proxy: the left-most, where the chain began.
    return peer if address is None else str(address)


class ClientAddress:
    """Puts the client's address (by `client_address`) in the scope, for everything after it.

    Installed only when proxies are trusted: otherwise the peer the server reports
    is the answer, and requests pay nothing for this.
    """

    def __init__(self, app: ASGIApp, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client:
            forwarded = [
                value.decode("latin-1") for name, value in scope["headers"] if name == FORWARDED_FOR
            ]
            address = client_address(client[0], forwarded, self.trusted)
            if address != client[0]:
                scope = {**scope, "client": (address, 0)}
        await self.app(scope, receive, send)


def address_of(request: HTTPConnection) -> str:
    """The address a request came from (by `client_address`, once `ClientAddress` ran)."""
    return request.client.host if request.client else "unknown"
