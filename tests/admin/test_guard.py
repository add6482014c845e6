"""The origin a browser names, as the same-origin check compares it."""

from __future__ import annotations

import pytest

from bazaar.admin.guard import origin_of


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://test", "http://test"),
        ("HTTPS://Bazaar.Example:443/admin/item/list?x=1", "https://bazaar.example"),
        ("http://bazaar.example:80/", "http://bazaar.example"),
        ("http://127.0.0.1:8000/admin/", "http://127.0.0.1:8000"),
        ("http://[::1]:8000/", "http://[::1]:8000"),
        ("https://bazaar.example:8443", "https://bazaar.example:8443"),
    ],
)
def test_an_origin_is_scheme_host_and_a_port_other_than_the_default(url: str, origin: str) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    "url", ["null", "", "file:///etc/passwd", "javascript:alert(1)", "http://", "http://x:99999"]
)
def test_what_names_no_web_origin_is_none(url: str) -> None:
    assert origin_of(url) is None
