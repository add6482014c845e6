"""Users: sign-up, look-ups, changes, removal."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.db import id_in_range
from bazaar.errors import Conflict, Forbidden, NotFound
from bazaar.pagination import AnyRow, Page, PageRequest, Sort, paginate
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


async def create_user(session: AsyncSession, *, data: UserCreate, passwords: Passwords) -> User:
    """Sign a new user up."""
    if await find_user_by_email(session, data.email) is not None:
        raise Conflict(EMAIL_IN_USE)
    user = User(
        name=data.name,
        email=data.email,
        hashed_password=await passwords.hash(data.password),
    )
    session.add(user)
    await _flush_unique_email(session)
    return user


async def update_user(
    session: AsyncSession,
    user: User,
    *,
    data: UserUpdate,
    caller: UserOut,
    passwords: Passwords,
) -> User:
    """Apply the fields `data` sets, by the rules of who may change what."""
    changes = data.model_dump(exclude_unset=True)
    if isinstance(data, UserAdminUpdate) and (
        {"is_active", "is_admin"} & changes.keys() and not caller.is_admin
    ):
        raise Forbidden("Only an admin can change is_active or is_admin")
    if "password" in changes:
        if caller.id == user.id:
            current = changes.get("current_password")
            matches, _ = await passwords.verify(current or "", user.hashed_password)
            if current is None or not matches:
                raise Forbidden("current_password is missing or wrong")
        user.hashed_password = await passwords.hash(changes["password"])
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
