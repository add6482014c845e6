"""Items in the unit of work: changes and removals, functions of the request's `AsyncSession`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.audit import changes as audit
from bazaar.errors import NotFound, PreconditionFailed
from bazaar.items.models import Item
from bazaar.items.schemas import ItemUpdate


async def lock_item(session: AsyncSession, item_id: int) -> Item:
    """The item with this id, locked until the transaction ends; NotFound otherwise.

    A write so decides on the version it is about to replace (no lost updates).
    """
    item = await session.get(Item, item_id, with_for_update=True)
    if item is None:
        raise NotFound("Item not found")
    return item


def check_version(item: Item, expected: set[int] | None) -> None:
    """PreconditionFailed unless the item is at one of the `expected` versions (None: any)."""
    if expected is not None and item.version not in expected:
        raise PreconditionFailed()


# What the audit trail shows of an item's change.
AUDITED_FIELDS = ("name", "price", "owner_id")


def _audited(item: Item) -> dict[str, object]:
    return {field: getattr(item, field) for field in AUDITED_FIELDS}


async def update_item(session: AsyncSession, item: Item, *, data: ItemUpdate) -> Item:
    """Apply the fields `data` sets; the version moves on (unless nothing changed)."""
    before = _audited(item)
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(item, field, value)
    difference = audit.changed(before, _audited(item))
    if difference:
        await audit.record(
            session, action="item.update", target_type="item", target_id=item.id, changes=difference
        )
    await session.flush()
    return item


async def delete_item(session: AsyncSession, item: Item) -> None:
    gone = {field: (value, None) for field, value in _audited(item).items()}
    await audit.record(
        session, action="item.delete", target_type="item", target_id=item.id, changes=gone
    )
    await session.delete(item)
    await session.flush()
