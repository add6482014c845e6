"""`/items`: anyone browses; signed-in users list items and change their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from bazaar.auth.dependencies import CheckedToken
from bazaar.auth.queries import Bearer, signed_in_user
from bazaar.db.executor import AnyRow, Runs
from bazaar.db.unit_of_work import SessionDep
from bazaar.errors import BODY_ERRORS, UNAUTHENTICATED, Forbidden, Responses
from bazaar.items import changes, queries
from bazaar.items.dependencies import ItemId, OwnedItem, etag
from bazaar.items.schemas import ItemCreate, ItemListQuery, ItemOut, ItemUpdate, UserItemsQuery
from bazaar.pagination import Page, page_request
from bazaar.responses import JSONOf, JSONRowsOf, absolute_url
from bazaar.services import services
from bazaar.users.dependencies import UserId

router = APIRouter(tags=["items"])

_403: Responses = {403: {"description": "Not the owner or an admin"}}
_404: Responses = {404: {"description": "Item not found"}}
_412: Responses = {412: {"description": "If-Match names an old ETag"}}


ITEM = JSONOf(ItemOut)
ITEMS = JSONRowsOf(ItemOut)


def _listed(page: Page, request: Request) -> Response:
    return ITEMS(page.rows, headers=page.headers(request))


def _create(connection: Runs, seller: Bearer, data: ItemCreate, *, verified_only: bool) -> AnyRow:
    # The seller's token and the insert in one call: one connection, one gate place.
    owner = signed_in_user(connection, seller)
    if verified_only and not owner.is_verified:
        raise Forbidden("Verify your email first")
    return queries.insert_item(connection, owner_id=owner.id, data=data)


@router.post(
    "/items",
    status_code=status.HTTP_201_CREATED,
    response_model=ItemOut,
    responses=UNAUTHENTICATED
    | BODY_ERRORS
    | {403: {"description": "Verify your email first (when verified emails are required)"}},
)
async def create_item(data: ItemCreate, seller: CheckedToken, request: Request) -> Response:
    """List a new item for sale."""
    app = services(request)
    row = await app.executor.write_one(
        _create, seller, data, verified_only=app.settings.require_verified_email
    )
    headers = {"Location": absolute_url(request, f"/items/{row.id}"), "ETag": etag(row.version)}
    return ITEM(row, status_code=status.HTTP_201_CREATED, headers=headers)


@router.get("/items", response_model=list[ItemOut])
async def list_items(query: Annotated[ItemListQuery, Query()], request: Request) -> Response:
    """Browse items, filtered and sorted."""
    page = page_request(query, request, sort=queries.SORTS[query.sort])
    # Anonymous browsing may lag: the replica's, when there is one (a client's own writes
    # excepted, by its cookie).
    result = await services(request).executor.read_may_lag(
        request, queries.list_items, query=query, owner_id=query.owner_id, page=page
    )
    return _listed(result, request)


@router.get("/items/{item_id}", response_model=ItemOut, responses=_404)
async def get_item(item_id: ItemId, request: Request) -> Response:
    """One item; its `ETag` is the version to name in If-Match."""
    row = await services(request).executor.read_may_lag(request, queries.read_item, item_id)
    return ITEM(row, headers={"ETag": etag(row.version)})


@router.patch(
    "/items/{item_id}",
    response_model=ItemOut,
    responses=UNAUTHENTICATED | _403 | _404 | _412 | BODY_ERRORS,
)
async def update_item(data: ItemUpdate, item: OwnedItem, session: SessionDep) -> Response:
    """Change an item (owner or admin); send If-Match to change only the version you saw."""
    item = await changes.update_item(session, item, data=data)
    return ITEM(item, headers={"ETag": etag(item.version)})


@router.delete(
    "/items/{item_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=UNAUTHENTICATED | _403 | _404 | _412,
)
async def delete_item(item: OwnedItem, session: SessionDep) -> None:
    """Remove an item (owner or admin)."""
    await changes.delete_item(session, item)


@router.get(
    "/users/{user_id}/items",
    response_model=list[ItemOut],
    responses={404: {"description": "User not found"}},
)
async def list_user_items(
    user_id: UserId, query: Annotated[UserItemsQuery, Query()], request: Request
) -> Response:
    """One user's items, filtered and sorted."""
    page = page_request(query, request, sort=queries.SORTS[query.sort])
    result = await services(request).executor.read_may_lag(
        request, queries.list_user_items, user_id, query=query, page=page
    )
    return _listed(result, request)
