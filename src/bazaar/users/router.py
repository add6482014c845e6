"""`/users`: sign-up, your own account, and (for admins) everyone's."""

from __future__ import annotations

from typing import Annotated, NoReturn

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from bazaar.auth.dependencies import AdminUser, CurrentUser
from bazaar.db import SessionDep, database
from bazaar.errors import BODY_ERRORS, UNAUTHENTICATED, Responses
from bazaar.fields import Name
from bazaar.pagination import PageQuery, page_request
from bazaar.responses import JSONOf, JSONRowsOf, absolute_url
from bazaar.security import Passwords
from bazaar.users import service
from bazaar.users.dependencies import AddressedId, AddressedUser
from bazaar.users.schemas import UserAdminUpdate, UserCreate, UserOut, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])

_403: Responses = {403: {"description": "Not allowed for this caller"}}
_404: Responses = {404: {"description": "User not found"}}
_BODY: Responses = BODY_ERRORS | {
    400: {"description": "Email already in use, or the body cannot be parsed"}
}


USER = JSONOf(UserOut)
USERS = JSONRowsOf(UserOut)


def _passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UserOut, responses=_BODY)
async def create_user(data: UserCreate, request: Request, session: SessionDep) -> Response:
    """Sign up."""
    user = await service.create_user(session, data=data, passwords=_passwords(request))
    location = absolute_url(request, f"/users/{user.id}")
    return USER(user, status_code=status.HTTP_201_CREATED, headers={"Location": location})


@router.get("", response_model=list[UserOut], responses=UNAUTHENTICATED | _403)
async def list_users(
    _admin: AdminUser, query: Annotated[PageQuery, Query()], request: Request
) -> Response:
    """All users, in id order (admins only)."""
    result = await database(request).read(service.list_users, page=page_request(query, request))
    return USERS(result.rows, headers=result.headers(request))


@router.get("/me", response_model=UserOut, responses=UNAUTHENTICATED)
async def read_me(caller: CurrentUser) -> Response:
    """Your own account."""
    return USER(caller)


@router.patch("/me", response_model=UserOut, responses=UNAUTHENTICATED | _403 | _BODY)
async def update_me(
    data: UserUpdate, caller: CurrentUser, request: Request, session: SessionDep
) -> Response:
    """Change your own account; a new password needs `current_password`."""
    user = await service.get_user(session, caller.id)
    user = await service.update_user(
        session, user, data=data, caller=caller, passwords=_passwords(request)
    )
    return USER(user)


@router.api_route("/me", methods=["PUT", "DELETE"], include_in_schema=False, response_model=None)
async def me_method_not_allowed() -> NoReturn:
    # Else `/{user_id}` would take these and call "me" a malformed id (a 422).
    raise HTTPException(status.HTTP_405_METHOD_NOT_ALLOWED)


@router.get("/{user_id}", response_model=UserOut, responses=UNAUTHENTICATED | _403 | _404)
async def get_user(user_id: AddressedId, request: Request) -> Response:
    """One user (yourself, or anyone for admins)."""
    return USER(await database(request).read(service.read_user, user_id))


@router.put("/{user_id}", response_model=UserOut, responses=UNAUTHENTICATED | _403 | _404)
async def rename_user(
    user: AddressedUser, name: Annotated[Name, Query()], session: SessionDep
) -> Response:
    """Rename a user."""
    return USER(await service.rename_user(session, user, name=name))


@router.patch("/{user_id}", response_model=UserOut, responses=UNAUTHENTICATED | _403 | _404 | _BODY)
async def update_user(
    data: UserAdminUpdate,
    user: AddressedUser,
    caller: CurrentUser,
    request: Request,
    session: SessionDep,
) -> Response:
    """Change a user; `is_active` and `is_admin` are for admins only."""
    user = await service.update_user(
        session, user, data=data, caller=caller, passwords=_passwords(request)
    )
    return USER(user)


@router.delete(
    "/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHENTICATED | _403 | _404
)
async def delete_user(user: AddressedUser, session: SessionDep) -> None:
    """Delete a user and their items."""
    await service.delete_user(session, user)
