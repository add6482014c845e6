"""`/users`: sign-up, your own account, and (for admins) everyone's."""

from __future__ import annotations

from typing import Annotated, NoReturn

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from bazaar.addresses import address_of
from bazaar.auth.dependencies import AdminUser, CurrentUser
from bazaar.db import SessionDep, database, unit_of_work
from bazaar.errors import BODY_ERRORS, UNAUTHENTICATED, Responses
from bazaar.fields import Name
from bazaar.pagination import PageQuery, page_request
from bazaar.responses import JSONOf, JSONRowsOf, absolute_url
from bazaar.security import Passwords
from bazaar.throttle import Throttle
from bazaar.users import service
from bazaar.users.dependencies import AddressedId, AddressedUser
from bazaar.users.models import User
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


_SIGN_UP_ERRORS: Responses = _BODY | {
    429: {"description": "Too many sign-ups from this address: see Retry-After"},
    503: {"description": "Too busy hashing passwords: see Retry-After"},
}


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=UserOut, responses=_SIGN_UP_ERRORS
)
async def create_user(data: UserCreate, request: Request) -> Response:
    """Sign up."""
    throttle: Throttle = request.app.state.throttle
    await throttle.spend(throttle.signup(address=address_of(request)))
    # Hashed before the insert takes a connection (or SQLite's write lock). No look-up of
    # the email first to save the hash of a taken one: under a burst of sign-ups those
    # reads queued for connections with everyone else's (p99 of item reads 153 ms, server
    # side), and the insert is what decides anyway.
    hashed = await _passwords(request).hash(data.password)
    user = await database(request).write_one(service.insert_user, data=data, hashed_password=hashed)
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
async def update_me(data: UserUpdate, caller: CurrentUser, request: Request) -> Response:
    """Change your own account; a new password needs `current_password`."""
    return USER(await _update(request, caller.id, data=data, caller=caller))


async def _update(request: Request, user_id: int, *, data: UserUpdate, caller: UserOut) -> User:
    # The password is checked and hashed before the change takes a connection.
    password = await service.new_password(
        database(request), _passwords(request), user_id=user_id, data=data, caller=caller
    )
    async with unit_of_work(request) as session:
        user = await service.get_user(session, user_id)
        return await service.update_user(session, user, data=data, caller=caller, password=password)


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
    data: UserAdminUpdate, user_id: AddressedId, caller: CurrentUser, request: Request
) -> Response:
    """Change a user; `is_active` and `is_admin` are for admins only."""
    return USER(await _update(request, user_id, data=data, caller=caller))


@router.delete(
    "/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHENTICATED | _403 | _404
)
async def delete_user(user: AddressedUser, session: SessionDep) -> None:
    """Delete a user and their items."""
    await service.delete_user(session, user)
