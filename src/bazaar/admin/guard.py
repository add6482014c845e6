"""What every `/admin` request passes: the same-origin check (CSRF) and the page policies.

A state-changing request (anything but GET, HEAD and OPTIONS) is refused with a 403
unless its `Origin`, or without one its `Referer`, is Bazaar's own public origin.
Browsers send `Origin` with every POST and DELETE, and no page elsewhere can forge
it; the `SameSite=Strict` cookie is a second line, not the only one (it does not
stop a sibling subdomain, which is same-site).
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of `url`, as a browser writes it in `Origin`; None if none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _inline_script_hashes() -> list[str]:
    """CSP hashes of the inline scripts of SQLAdmin's templates that Bazaar's pages use
    (the toast of flash messages), read from the installed templates: no other inline
    script runs."""
    template = files("sqladmin").joinpath("templates/sqladmin/flash.html").read_text("utf-8")
    hashes = []
    for body in re.findall(r"<script>(.*?)</script>", template, flags=re.DOTALL):
        digest = hashlib.sha256(body.encode()).digest()
        hashes.append(f"'sha256-{base64.b64encode(digest).decode()}'")
    return hashes


# Nothing from anywhere else: every script, style and font is SQLAdmin's own, served by
# Bazaar. Its templates set inline styles (progress bars), hence 'unsafe-inline' there.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        " ".join(["script-src 'self'", *_inline_script_hashes()]),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ]
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


class AdminGuard:
    """Refuses cross-origin writes; links are written with the public origin, whatever
    `Host` a request names; pages carry the policy above and are never cached."""

    def __init__(self, app: ASGIApp, *, public_url: str) -> None:
        self.app = app
        origin = origin_of(public_url)
        if origin is None:  # the settings validated it: an absolute http(s) URL
            raise ValueError(f"not an absolute http(s) URL: {public_url!r}")
        self.origin = origin
        parts = urlsplit(public_url)
        self.scheme = parts.scheme
        self.host = parts.netloc.encode("idna")

    def _same_origin(self, scope: Scope) -> bool:
        origin = referer = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"referer":
                referer = value.decode("latin-1")
        claimed = origin if origin is not None else referer
        return claimed is not None and origin_of(claimed) == self.origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and not self._same_origin(scope):
            refusal = PlainTextResponse(
                "Refused: this request did not come from Bazaar's own pages", status_code=403
            )
            await refusal(scope, receive, send)
            return
        # SQLAdmin writes its links and redirects from the request's URL.
        headers = [(name, value) for name, value in scope["headers"] if name != b"host"]
        scope = {**scope, "scheme": self.scheme, "headers": [*headers, (b"host", self.host)]}
        asset = scope["path"].startswith(f"{scope.get('root_path', '')}/statics/")

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.update(_HEADERS)
                if not asset:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_policy)
