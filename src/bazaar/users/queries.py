"""Users on the fast path: reads and the one-statement sign-up, functions of a `Connection`."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from bazaar.db.executor import AnyRow, Runs
from bazaar.errors import Conflict, NotFound
from bazaar.pagination import Page, PageRequest, Sort, paginate
from bazaar.users.models import USER_COLUMNS, User
from bazaar.users.schemas import UserCreate

EMAIL_IN_USE = "Email already in use"
BY_ID = Sort("id", User.id)

_USER_BY_ID = select(*USER_COLUMNS).where(User.id == bindparam("user_id"))
_USERS = select(*USER_COLUMNS)
_INSERT_USER = insert(User).returning(*USER_COLUMNS)


def read_user(connection: Runs, user_id: int) -> AnyRow:
    """The user with this id, as a row (no password hash); NotFound otherwise."""
    row = connection.execute(_USER_BY_ID, {"user_id": user_id}).first()
    if row is None:
        raise NotFound("User not found")
    return row


def insert_user(connection: Runs, *, data: UserCreate, hashed_password: str) -> AnyRow:
    """Sign a new user up, with the hash of their password made beforehand; the new row."""
    values = {"name": data.name, "email": data.email, "hashed_password": hashed_password}
    try:
        return connection.execute(_INSERT_USER, values).one()
    except IntegrityError as exc:
        # The unique constraint is the truth about duplicates.
        raise Conflict(EMAIL_IN_USE) from exc


def list_users(connection: Runs, *, page: PageRequest) -> Page:
    """Users in id order, a page at a time."""
    return paginate(connection, _USERS, {}, page=page, id_column=User.id)
