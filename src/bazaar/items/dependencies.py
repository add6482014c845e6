"""The item a write addresses, once the caller may change it at the version they name."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path

from bazaar.auth.dependencies import CheckedToken, session_caller
from bazaar.db.unit_of_work import SessionDep
from bazaar.errors import Forbidden
from bazaar.fields import existing_id
from bazaar.items import changes
from bazaar.items.models import Item

# An item's id in a path: out of the column's range it is a 404 before any database work.
ItemId = Annotated[int, Path(), existing_id("Item not found")]


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
    item_id: ItemId,
    bearer: CheckedToken,
    session: SessionDep,
    if_match: Annotated[str | None, Header(description="Apply only to this ETag")] = None,
) -> Item:
    # The caller is checked on the session's connection: one connection for the request.
    caller = await session_caller(session, bearer)
    item = await changes.lock_item(session, item_id)
    if item.owner_id != caller.id and not caller.is_admin:
        raise Forbidden("Only the item's owner or an admin can change it")
    changes.check_version(item, parse_if_match(if_match))
    return item


# Owner or admin, at the version If-Match names (when it names one).
OwnedItem = Annotated[Item, Depends(_owned_item)]
