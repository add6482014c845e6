"""The user a `/users/{user_id}` route addresses, once the caller may address them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from bazaar.auth.dependencies import CheckedToken, session_caller
from bazaar.db.unit_of_work import SessionDep
from bazaar.fields import existing_id
from bazaar.users import changes
from bazaar.users.models import User

# A user's id in a path: out of the column's range it is a 404 before any database work.
UserId = Annotated[int, Path(), existing_id("User not found")]


async def _addressed_user(user_id: UserId, bearer: CheckedToken, session: SessionDep) -> User:
    # The caller is checked on the session's connection: one connection for the request.
    changes.check_may_address(await session_caller(session, bearer), user_id)
    return await changes.get_user(session, user_id)


# The user the path names, loaded into the request's session to be changed, once the
# caller may: themselves, or anyone when the caller is an admin.
AddressedUser = Annotated[User, Depends(_addressed_user)]
