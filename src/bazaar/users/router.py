"""`/users`: sign-up, your own account, and (for admins) everyone's."""

from __future__ import annotations

from typing import Annotated, NoReturn

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from bazaar.addresses import address_of
from bazaar.auth.changes import end_sessions
from bazaar.auth.dependencies import AdminUser, CheckedToken, CurrentUser, session_caller
from bazaar.auth.queries import Bearer, signed_in_user
from bazaar.db.executor import AnyRow, Runs
from bazaar.db.unit_of_work import SessionDep, unit_of_work
from bazaar.errors import BODY_ERRORS, UNAUTHENTICATED, Forbidden, Responses
from bazaar.fields import Name
from bazaar.pagination import PageQuery, page_request
from bazaar.responses import JSONOf, JSONRowsOf, absolute_url
from bazaar.services import services
from bazaar.users import changes, queries
from bazaar.users.dependencies import AddressedUser, UserId
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


_SIGN_UP_ERRORS: Responses = _BODY | {
    429: {"description": "Too many sign-ups from this address: see Retry-After"},
    503: {"description": "Too busy hashing passwords: see Retry-After"},
}


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=UserOut, responses=_SIGN_UP_ERRORS
)
async def create_user(data: UserCreate, request: Request) -> Response:
    """Sign up."""
    app = services(request)
    await app.throttle.spend(app.throttle.signup(address=address_of(request)))
    # Hashed before the insert takes a connection (or SQLite's write lock).
    hashed = await app.passwords.hash(data.password)
    async with unit_of_work(request) as session:
        user = await changes.sign_up(
            session, data=data, hashed_password=hashed, settings=app.settings
        )
    # Committed: the verification mail is in the outbox.
    app.mail.wake()
    location = absolute_url(request, f"/users/{user.id}")
    return USER(user, status_code=status.HTTP_201_CREATED, headers={"Location": location})


@router.get("", response_model=list[UserOut], responses=UNAUTHENTICATED | _403)
async def list_users(
    _admin: AdminUser, query: Annotated[PageQuery, Query()], request: Request
) -> Response:
    """All users, in id order (admins only)."""
    page = page_request(query, request, sort=queries.BY_ID)
    result = await services(request).executor.read(queries.list_users, page=page)
    return USERS(result.rows, headers=result.headers(request))


@router.get("/me", response_model=UserOut, responses=UNAUTHENTICATED)
async def read_me(caller: CurrentUser) -> Response:
    """Your own account."""
    return USER(caller)


@router.patch("/me", response_model=UserOut, responses=UNAUTHENTICATED | _403 | _BODY)
async def update_me(data: UserUpdate, bearer: CheckedToken, request: Request) -> Response:
    """Change your own account; a new password needs `current_password`."""
    return USER(await _update(request, bearer.claims.user_id, data=data, bearer=bearer))


async def _update(request: Request, user_id: int, *, data: UserUpdate, bearer: Bearer) -> User:
    app = services(request)
    password = proven = None
    # Checked (and hashed) before the change takes a connection.
    if data.password is not None:
        password = await changes.new_password(
            app.executor, app.passwords, bearer=bearer, user_id=user_id, data=data
        )
    elif data.email is not None:
        proven = await changes.proven_password(
            app.executor,
            app.passwords,
            bearer=bearer,
            user_id=user_id,
            email=data.email,
            current_password=data.current_password,
        )
    async with unit_of_work(request) as session:
        caller = await session_caller(session, bearer)
        changes.check_may_address(caller, user_id)
        user = await changes.get_user(session, user_id)
        user = await changes.update_user(
            session,
            user,
            data=data,
            caller=caller,
            settings=app.settings,
            password=password,
            proven=proven,
        )
    if data.email is not None:
        app.mail.wake()
    return user


@router.api_route("/me", methods=["PUT", "DELETE"], include_in_schema=False, response_model=None)
async def me_method_not_allowed() -> NoReturn:
    # Else `/{user_id}` would take these and call "me" a malformed id (a 422).
    raise HTTPException(status.HTTP_405_METHOD_NOT_ALLOWED)


def _addressed(connection: Runs, bearer: Bearer, user_id: int) -> AnyRow:
    """The user `user_id`, once the caller `bearer` names may see them (one call for both)."""
    changes.check_may_address(signed_in_user(connection, bearer), user_id)
    return queries.read_user(connection, user_id)


@router.get("/{user_id}", response_model=UserOut, responses=UNAUTHENTICATED | _403 | _404)
async def get_user(user_id: UserId, bearer: CheckedToken, request: Request) -> Response:
    """One user (yourself, or anyone for admins)."""
    return USER(await services(request).executor.read(_addressed, bearer, user_id))


@router.put("/{user_id}", response_model=UserOut, responses=UNAUTHENTICATED | _403 | _404)
async def rename_user(
    user: AddressedUser, name: Annotated[Name, Query()], session: SessionDep
) -> Response:
    """Rename a user."""
    return USER(await changes.rename_user(session, user, name=name))


@router.patch("/{user_id}", response_model=UserOut, responses=UNAUTHENTICATED | _403 | _404 | _BODY)
async def update_user(
    data: UserAdminUpdate, user_id: UserId, bearer: CheckedToken, request: Request
) -> Response:
    """Change a user; `is_active` and `is_admin` are for admins only."""
    return USER(await _update(request, user_id, data=data, bearer=bearer))


@router.delete(
    "/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHENTICATED | _403 | _404
)
async def delete_user(user: AddressedUser, session: SessionDep) -> None:
    """Delete a user and their items."""
    await changes.delete_user(session, user)


@router.delete(
    "/{user_id}/sessions",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=UNAUTHENTICATED | _403 | _404,
)
async def end_user_sessions(user_id: UserId, bearer: CheckedToken, request: Request) -> None:
    """Sign a user out everywhere: every session of theirs ends (admins only)."""
    async with unit_of_work(request) as session:
        if not (await session_caller(session, bearer)).is_admin:
            raise Forbidden("Admins only")
        user = await changes.get_user(session, user_id)
        await end_sessions(session, user.id)
