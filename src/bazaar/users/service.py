"""Users: sign-up, look-ups, changes, removal."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.db import Database, id_in_range
from bazaar.errors import Conflict, Forbidden, InvalidInput, NotFound
from bazaar.pagination import AnyRow, Page, PageRequest, Sort, paginate
from bazaar.password_rules import password_problem
from bazaar.security import Passwords
from bazaar.users.models import User
from bazaar.users.schemas import UserAdminUpdate, UserCreate, UserOut, UserUpdate

EMAIL_IN_USE = "Email already in use"
BY_ID = Sort("id", User.id)
# What a list shows of each user (never the password hash).
USER_COLUMNS = (User.id, User.name, User.email, User.is_active, User.is_admin, User.created_at)


_USER_BY_ID = select(*USER_COLUMNS).where(User.id == bindparam("user_id"))
_USERS = select(*USER_COLUMNS)
# Who signs in: what they may see of themselves, and the hash their token is bound to.
_SIGNED_IN_BY_ID = _USER_BY_ID.add_columns(User.hashed_password)
_CREDENTIALS_BY_EMAIL = select(User.id, User.hashed_password, User.is_active).where(
    User.email == bindparam("email")
)
_INSERT_USER = insert(User).returning(*USER_COLUMNS)
# Only over the hash that was verified: a password changed meanwhile is not overwritten.
_REPLACE_HASH = (
    update(User)
    .where(User.id == bindparam("user_id"), User.hashed_password == bindparam("old_hash"))
    .values(hashed_password=bindparam("new_hash"))
)


def read_user(connection: Connection, user_id: int) -> AnyRow:
    """The user with this id, as a row (no password hash); NotFound otherwise."""
    row = (
        connection.execute(_USER_BY_ID, {"user_id": user_id}).first()
        if id_in_range(user_id)
        else None
    )
    if row is None:
        raise NotFound("User not found")
    return row


def read_signed_in(connection: Connection, user_id: int) -> AnyRow | None:
    """The user with this id and their password hash, or None."""
    if not id_in_range(user_id):
        return None
    return connection.execute(_SIGNED_IN_BY_ID, {"user_id": user_id}).first()


async def get_user(session: AsyncSession, user_id: int) -> User:
    """The user with this id, loaded into `session` to be changed; NotFound otherwise."""
    user = await session.get(User, user_id) if id_in_range(user_id) else None
    if user is None:
        raise NotFound("User not found")
    return user


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    if "\x00" in email:
        # No stored email has one, and PostgreSQL refuses NUL in a query's text.
        return None
    return await session.scalar(select(User).where(User.email == email))


def read_credentials(connection: Connection, email: str) -> AnyRow | None:
    """(id, hashed_password, is_active) of the user with this email, or None."""
    if "\x00" in email:
        # No stored email has one, and PostgreSQL refuses NUL in a query's text.
        return None
    return connection.execute(_CREDENTIALS_BY_EMAIL, {"email": email}).first()


def replace_hash(connection: Connection, user_id: int, *, old_hash: str, new_hash: str) -> bool:
    """Store `new_hash` for the user whose hash is still `old_hash`; whether it was stored."""
    values = {"user_id": user_id, "old_hash": old_hash, "new_hash": new_hash}
    return connection.execute(_REPLACE_HASH, values).rowcount == 1


def insert_user(connection: Connection, *, data: UserCreate, hashed_password: str) -> AnyRow:
    """Sign a new user up, with the hash of their password made beforehand; the new row."""
    values = {"name": data.name, "email": data.email, "hashed_password": hashed_password}
    try:
        return connection.execute(_INSERT_USER, values).one()
    except IntegrityError as exc:
        # The unique constraint is the truth about duplicates.
        raise Conflict(EMAIL_IN_USE) from exc


def list_users(connection: Connection, *, page: PageRequest) -> Page:
    """Users in id order, a page at a time."""
    return paginate(connection, _USERS, {}, page=page, sort=BY_ID, id_column=User.id, scope="users")


async def _flush_unique_email(session: AsyncSession) -> None:
    # The unique constraint is the truth about duplicates, also when two
    # requests race past the courtesy check.
    try:
        await session.flush()
    except IntegrityError as exc:
        if "email" in str(exc.orig):
            raise Conflict(EMAIL_IN_USE) from exc
        raise


async def create_user(session: AsyncSession, *, data: UserCreate, hashed_password: str) -> User:
    """Sign a new user up in `session`, with the hash of their password made beforehand."""
    if await find_user_by_email(session, data.email) is not None:
        raise Conflict(EMAIL_IN_USE)
    user = User(name=data.name, email=data.email, hashed_password=hashed_password)
    session.add(user)
    await _flush_unique_email(session)
    return user


@dataclass(frozen=True)
class NewPassword:
    """A password change, hashed before any connection is held: the new hash, and the hash
    the caller proved they knew (when they change their own), which must still be stored."""

    hashed: str
    replaces: str | None


async def new_password(
    database: Database,
    passwords: Passwords,
    *,
    user_id: int,
    data: UserUpdate,
    caller: UserOut,
) -> NewPassword | None:
    """The hashed password change `data` asks for, if any, checked by the rules of who may
    change it: a user changing their own gives the current one; an admin need not.

    Hashing takes tens of milliseconds of CPU: it runs before the change holds a pooled
    connection (or SQLite's write lock), so that other requests keep theirs flowing.
    """
    changes = data.model_dump(exclude_unset=True)
    if "password" not in changes:
        return None
    row = await database.read(read_signed_in, user_id)
    if row is None:
        raise NotFound("User not found")
    problem = password_problem(changes["password"], email=changes.get("email", row.email))
    if problem is not None:
        raise InvalidInput(loc=("body", "password"), msg=problem, value=None)
    replaces = None
    if caller.id == user_id:
        current = changes.get("current_password")
        matches, _ = await passwords.verify(current or "", row.hashed_password)
        if current is None or not matches:
            raise Forbidden("current_password is missing or wrong")
        replaces = row.hashed_password
    return NewPassword(await passwords.hash(changes["password"]), replaces)


async def update_user(
    session: AsyncSession,
    user: User,
    *,
    data: UserUpdate,
    caller: UserOut,
    password: NewPassword | None = None,
) -> User:
    """Apply the fields `data` sets, by the rules of who may change what; `password` is
    the change `new_password` made of `data`."""
    changes = data.model_dump(exclude_unset=True)
    if ("password" in changes) != (password is not None):
        raise ValueError("a password change is hashed by `new_password` first")
    if isinstance(data, UserAdminUpdate) and (
        {"is_active", "is_admin"} & changes.keys() and not caller.is_admin
    ):
        raise Forbidden("Only an admin can change is_active or is_admin")
    if password is not None:
        if password.replaces is not None and password.replaces != user.hashed_password:
            # Changed by another request since the caller proved the old one.
            raise Forbidden("current_password is missing or wrong")
        user.hashed_password = password.hashed
    if "email" in changes and changes["email"] != user.email:
        if await find_user_by_email(session, changes["email"]) is not None:
            raise Conflict(EMAIL_IN_USE)
        user.email = changes["email"]
    for field in ("name", "is_active", "is_admin"):
        if field in changes:
            setattr(user, field, changes[field])
    await _flush_unique_email(session)
    return user


async def rename_user(session: AsyncSession, user: User, *, name: str) -> User:
    user.name = name
    await session.flush()
    return user


async def delete_user(session: AsyncSession, user: User) -> None:
    """Remove the user; their items go with them (ON DELETE CASCADE)."""
    await session.delete(user)
    await session.flush()
