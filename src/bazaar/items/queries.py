"""Items on the fast path: browsing and listing a new one, functions of a `Connection`."""

from __future__ import annotations

import functools

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from bazaar.db.executor import AnyRow, Runs
from bazaar.errors import NotFound, Unauthorized
from bazaar.items.models import Item
from bazaar.items.schemas import ItemCreate, ItemQuery, ItemSort
from bazaar.pagination import AnySelect, Page, PageRequest, Sort, paginate
from bazaar.users.queries import read_user

# What a read shows of an item, read as plain rows: building ORM objects for rows
# that will only be serialised cost more than the query.
ITEM_COLUMNS = (Item.id, Item.name, Item.price, Item.owner_id, Item.created_at, Item.version)
# Built once: composing the statement anew took a tenth of a read's time.
_ITEM_BY_ID = select(*ITEM_COLUMNS).where(Item.id == bindparam("item_id"))
# A new item is one statement: the ORM's unit of work would add nothing but its cost.
_INSERT_ITEM = insert(Item).returning(*ITEM_COLUMNS)

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


def insert_item(connection: Runs, *, owner_id: int, data: ItemCreate) -> AnyRow:
    """List a new item for the user `owner_id`, at its first version; Unauthorized when
    that user is gone (their token no longer holds)."""
    values = {"name": data.name, "price": data.price, "owner_id": owner_id, "version": 1}
    try:
        return connection.execute(_INSERT_ITEM, values).one()
    except IntegrityError as exc:
        # The foreign key: on PostgreSQL the owner's account can be deleted between the
        # check of their token and the insert (each is a statement of its own). SQLite's
        # write lock keeps the two together.
        raise Unauthorized("Invalid or expired token") from exc


def read_item(connection: Runs, item_id: int) -> AnyRow:
    """The item with this id, as a row; NotFound otherwise."""
    row = connection.execute(_ITEM_BY_ID, {"item_id": item_id}).first()
    if row is None:
        raise NotFound("Item not found")
    return row


def list_items(
    connection: Runs,
    *,
    query: ItemQuery,
    page: PageRequest,
    owner_id: int | None = None,
) -> Page:
    """Items matching `query`, in its order, a page at a time."""
    filters = {
        "owner_id": owner_id,
        "min_price": query.min_price,
        "max_price": query.max_price,
        "name_part": None if query.q is None else _like_escaped(query.q),
    }
    params = {name: value for name, value in filters.items() if value is not None}
    return paginate(
        connection, _filtered_items(frozenset(params)), params, page=page, id_column=Item.id
    )


LIKE_ESCAPE = "/"


@functools.cache
def _filtered_items(filters: frozenset[str]) -> AnySelect:
    """Items, filtered on the values that `list_items` binds under the names in `filters`."""
    statement = select(*ITEM_COLUMNS)
    if "owner_id" in filters:
        statement = statement.where(Item.owner_id == bindparam("owner_id"))
    if "min_price" in filters:
        statement = statement.where(Item.price >= bindparam("min_price"))
    if "max_price" in filters:
        statement = statement.where(Item.price <= bindparam("max_price"))
    if "name_part" in filters:
        statement = statement.where(Item.name.icontains(bindparam("name_part"), escape=LIKE_ESCAPE))
    return statement


def _like_escaped(text: str) -> str:
    """`text` matched literally by LIKE: its wildcards escaped with LIKE_ESCAPE."""
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return text


def list_user_items(connection: Runs, user_id: int, *, query: ItemQuery, page: PageRequest) -> Page:
    """The items of the user `user_id`, as `list_items` gives them; NotFound for no such user."""
    read_user(connection, user_id)  # NotFound for no such user
    return list_items(connection, query=query, page=page, owner_id=user_id)
