"""The item a write addresses, once the caller may change it at the version they name."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path

from bazaar.auth.dependencies import CurrentUser
from bazaar.db import SessionDep
from bazaar.errors import Forbidden
from bazaar.items import service
from bazaar.items.models import Item


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> set[int] | None:
    """The versions an If-Match header accepts; None for any (absent, or `*`)."""
    if header is None or header.strip() == "*":
        return None
    versions = set()
    for tag in header.split(","):
        value = tag.strip().removeprefix("W/").strip('"')
        if value.isascii() and value.isdigit():
            versions.add(int(value))
    return versions


async def _owned_item(
    item_id: Annotated[int, Path()],
    caller: CurrentUser,
    session: SessionDep,
    if_match: Annotated[str | None, Header(description="Apply only to this ETag")] = None,
) -> Item:
    item = await service.lock_item(session, item_id)
    if item.owner_id != caller.id and not caller.is_admin:
        raise Forbidden("Only the item's owner or an admin can change it")
    service.check_version(item, parse_if_match(if_match))
    return item


# Owner or admin, at the version If-Match names (when it names one).
OwnedItem = Annotated[Item, Depends(_owned_item)]
