"""The user a `/users/{user_id}` route addresses, once the caller may address them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from bazaar.auth.dependencies import CurrentUser
from bazaar.db import SessionDep, id_in_range
from bazaar.errors import Forbidden, NotFound
from bazaar.users import service
from bazaar.users.models import User


async def _addressed_user(
    user_id: Annotated[int, Path()], caller: CurrentUser, session: SessionDep
) -> User:
    if not id_in_range(user_id):
        raise NotFound("User not found")
    if caller.id == user_id:
        return caller
    if not caller.is_admin:
        raise Forbidden("You can only do this for your own account")
    return await service.get_user(session, user_id)


# Self or admin: the caller themselves, or anyone when the caller is an admin.
AddressedUser = Annotated[User, Depends(_addressed_user)]
