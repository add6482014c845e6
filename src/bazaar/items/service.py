"""Items: listing, browsing, changing and removing them."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.db import id_in_range
from bazaar.errors import NotFound, PreconditionFailed
from bazaar.items.models import Item
from bazaar.items.schemas import ItemCreate, ItemQuery, ItemSort, ItemUpdate
from bazaar.pagination import AnyRow, Page, PageRequest, Sort, paginate
from bazaar.users.models import User

# What a read shows of an item, read as plain rows: building ORM objects for rows
# that will only be serialised cost more than the query.
ITEM_COLUMNS = (Item.id, Item.name, Item.price, Item.owner_id, Item.created_at, Item.version)
# Built once: composing the statement anew took a tenth of a read's time.
_ITEM_BY_ID = select(*ITEM_COLUMNS).where(Item.id == bindparam("item_id"))

SORTS: dict[ItemSort, Sort] = {
    "id": Sort("id", Item.id),
    "-id": Sort("-id", Item.id, descending=True),
    "price": Sort("price", Item.price),
    "-price": Sort("-price", Item.price, descending=True),
    "name": Sort("name", Item.name),
    "-name": Sort("-name", Item.name, descending=True),
    "created_at": Sort("created_at", Item.created_at),
    "-created_at": Sort("-created_at", Item.created_at, descending=True),
}


async def create_item(session: AsyncSession, *, owner: User, data: ItemCreate) -> Item:
    """List a new item, owned by `owner`."""
    item = Item(name=data.name, price=data.price, owner_id=owner.id)
    session.add(item)
    await session.flush()
    return item


async def get_item(session: AsyncSession, item_id: int, *, for_update: bool = False) -> Item:
    """The item with this id; NotFound otherwise.

    `for_update` locks the row until the transaction ends, so that a write
    decides on the version it is about to replace (no lost updates).
    """
    if not id_in_range(item_id):
        raise NotFound("Item not found")
    item = await session.get(Item, item_id, with_for_update=for_update)
    if item is None:
        raise NotFound("Item not found")
    return item


async def read_item(session: AsyncSession, item_id: int) -> AnyRow:
    """The item with this id, as a row; NotFound otherwise."""
    if not id_in_range(item_id):
        raise NotFound("Item not found")
    row = (await session.execute(_ITEM_BY_ID, {"item_id": item_id})).first()
    if row is None:
        raise NotFound("Item not found")
    return row


def check_version(item: Item, expected: set[int] | None) -> None:
    """PreconditionFailed unless the item is at one of the `expected` versions (None: any)."""
    if expected is not None and item.version not in expected:
        raise PreconditionFailed()


async def update_item(session: AsyncSession, item: Item, *, data: ItemUpdate) -> Item:
    """Apply the fields `data` sets; the version moves on."""
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(item, field, value)
    await session.flush()
    return item


async def delete_item(session: AsyncSession, item: Item) -> None:
    await session.delete(item)
    await session.flush()


async def list_items(
    session: AsyncSession,
    *,
    query: ItemQuery,
    page: PageRequest,
    owner_id: int | None = None,
) -> Page:
    """Items matching `query`, in its order, a page at a time."""
    statement = select(*ITEM_COLUMNS)
    if owner_id is not None:
        statement = statement.where(Item.owner_id == owner_id)
    if query.min_price is not None:
        statement = statement.where(Item.price >= query.min_price)
    if query.max_price is not None:
        statement = statement.where(Item.price <= query.max_price)
    if query.q is not None:
        statement = statement.where(Item.name.icontains(query.q, autoescape=True))
    return await paginate(
        session,
        statement,
        page=page,
        sort=SORTS[query.sort],
        id_column=Item.id,
        scope="items",
    )
