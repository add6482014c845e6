"""`/items`: anyone browses; signed-in users list items and change their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from bazaar.auth.dependencies import CurrentUser
from bazaar.db import SessionDep
from bazaar.errors import BODY_ERRORS, Responses
from bazaar.items import service
from bazaar.items.dependencies import OwnedItem, etag
from bazaar.items.models import Item
from bazaar.items.schemas import ItemCreate, ItemFilters, ItemOut, ItemQuery, ItemUpdate
from bazaar.pagination import Page, PageQuery
from bazaar.users import service as users

router = APIRouter(tags=["items"])

_401: Responses = {401: {"description": "Missing, invalid or expired token"}}
_403: Responses = {403: {"description": "Not the owner or an admin"}}
_404: Responses = {404: {"description": "Item not found"}}
_412: Responses = {412: {"description": "If-Match names an old ETag"}}


def _listed(page: Page[Item], request: Request, response: Response) -> list[ItemOut]:
    response.headers.update(page.headers(request))
    return [ItemOut.model_validate(item) for item in page.rows]


@router.post("/items", status_code=status.HTTP_201_CREATED, responses=_401 | BODY_ERRORS)
async def create_item(
    data: ItemCreate, caller: CurrentUser, request: Request, response: Response, session: SessionDep
) -> ItemOut:
    """List a new item for sale."""
    item = await service.create_item(session, owner=caller, data=data)
    response.headers["Location"] = str(request.url_for("get_item", item_id=item.id))
    response.headers["ETag"] = etag(item)
    return ItemOut.model_validate(item)


@router.get("/items")
async def list_items(
    filters: Annotated[ItemFilters, Query()],
    page: PageQuery,
    request: Request,
    response: Response,
    session: SessionDep,
) -> list[ItemOut]:
    """Browse items, filtered and sorted."""
    result = await service.list_items(session, query=filters, owner_id=filters.owner_id, page=page)
    return _listed(result, request, response)


@router.get("/items/{item_id}", responses=_404)
async def get_item(item_id: int, response: Response, session: SessionDep) -> ItemOut:
    """One item; its `ETag` is the version to name in If-Match."""
    item = await service.get_item(session, item_id)
    response.headers["ETag"] = etag(item)
    return ItemOut.model_validate(item)


@router.patch("/items/{item_id}", responses=_401 | _403 | _404 | _412 | BODY_ERRORS)
async def update_item(
    data: ItemUpdate, item: OwnedItem, response: Response, session: SessionDep
) -> ItemOut:
    """Change an item (owner or admin); send If-Match to change only the version you saw."""
    item = await service.update_item(session, item, data=data)
    response.headers["ETag"] = etag(item)
    return ItemOut.model_validate(item)


@router.delete(
    "/items/{item_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_401 | _403 | _404 | _412,
)
async def delete_item(item: OwnedItem, session: SessionDep) -> None:
    """Remove an item (owner or admin)."""
    await service.delete_item(session, item)


@router.get("/users/{user_id}/items", responses={404: {"description": "User not found"}})
async def list_user_items(
    user_id: int,
    query: Annotated[ItemQuery, Query()],
    page: PageQuery,
    request: Request,
    response: Response,
    session: SessionDep,
) -> list[ItemOut]:
    """One user's items, filtered and sorted."""
    owner = await users.get_user(session, user_id)
    result = await service.list_items(session, query=query, owner_id=owner.id, page=page)
    return _listed(result, request, response)
