"""The mails accounts send, from the Jinja2 templates shipped in the package."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@functools.cache
def templates() -> Environment:
    """The pages' and mails' templates: HTML escaped, plain text as written."""
    return Environment(
        loader=PackageLoader("bazaar.accounts", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


@dataclass(frozen=True)
class Letter:
    subject: str
    body: str


def link(public_url: str, page: str, token: str) -> str:
    """The link to an account page carrying `token`: the only place its URL form goes."""
    return f"{public_url}/account/{page}?{urlencode({'token': token})}"


def _text(template: str, **values: str) -> str:
    return templates().get_template(f"mail/{template}.txt").render(**values)


def verification(*, name: str, email: str, link: str) -> Letter:
    return Letter(
        "Verify your email for Bazaar",
        _text("verify-email", name=name, email=email, link=link),
    )


def password_reset(*, name: str, link: str) -> Letter:
    return Letter("Reset your Bazaar password", _text("reset-password", name=name, link=link))


def email_changed(*, name: str, old_email: str) -> Letter:
    return Letter(
        "The email of your Bazaar account was changed",
        _text("email-changed", name=name, email=old_email),
    )
