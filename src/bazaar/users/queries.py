"""Users on the fast path: reads, functions of a `Connection`."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from bazaar.db.executor import AnyRow, Runs
from bazaar.errors import NotFound
from bazaar.pagination import Page, PageRequest, Sort, paginate
from bazaar.users.models import USER_COLUMNS, User

EMAIL_IN_USE = "Email already in use"
BY_ID = Sort("id", User.id)

_USER_BY_ID = select(*USER_COLUMNS).where(User.id == bindparam("user_id"))
_USERS = select(*USER_COLUMNS)


def read_user(connection: Runs, user_id: int) -> AnyRow:
    """The user with this id, as a row (no password hash); NotFound otherwise."""
    row = connection.execute(_USER_BY_ID, {"user_id": user_id}).first()
    if row is None:
        raise NotFound("User not found")
    return row


def list_users(connection: Runs, *, page: PageRequest) -> Page:
    """Users in id order, a page at a time."""
    return paginate(connection, _USERS, {}, page=page, id_column=User.id)
