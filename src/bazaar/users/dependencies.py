"""The user a `/users/{user_id}` route addresses, once the caller may address them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from bazaar.auth.dependencies import CurrentUser
from bazaar.db import SessionDep, id_in_range
from bazaar.errors import Forbidden, NotFound
from bazaar.users import service
from bazaar.users.models import User


async def _addressed_id(user_id: Annotated[int, Path()], caller: CurrentUser) -> int:
    if not id_in_range(user_id):
        raise NotFound("User not found")
    if caller.id != user_id and not caller.is_admin:
        raise Forbidden("You can only do this for your own account")
    return user_id


# The id of a user the caller may address: themselves, or anyone when the caller is an admin.
AddressedId = Annotated[int, Depends(_addressed_id)]


async def _addressed_user(user_id: AddressedId, session: SessionDep) -> User:
    return await service.get_user(session, user_id)


# That user, loaded into the request's session to be changed.
AddressedUser = Annotated[User, Depends(_addressed_user)]
