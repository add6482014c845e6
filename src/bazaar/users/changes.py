"""Users in the unit of work: changes to accounts, functions of the request's `AsyncSession`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.audit import changes as audit
from bazaar.auth.changes import end_sessions
from bazaar.auth.queries import Bearer, signed_in_user
from bazaar.db.executor import AnyRow, Executor, Runs
from bazaar.errors import Conflict, Forbidden, InvalidInput, NotFound
from bazaar.password_rules import email_problem
from bazaar.security import Passwords
from bazaar.users.models import User
from bazaar.users.queries import EMAIL_IN_USE, read_user
from bazaar.users.schemas import UserAdminUpdate, UserCreate, UserOut, UserUpdate


async def get_user(session: AsyncSession, user_id: int) -> User:
    """The user with this id, loaded into `session` to be changed and locked until the
    transaction ends; NotFound otherwise.

    Locked, so that what a change checks against the row (the hash a caller proved they
    knew) is what it then replaces: a change committed meanwhile is seen, not overwritten.
    The lock is the one an UPDATE takes anyway (PostgreSQL's FOR NO KEY UPDATE), so the
    user's new items, whose foreign key only shares the key, are not held up by it.
    """
    user = await session.get(User, user_id, with_for_update={"key_share": True})
    if user is None:
        raise NotFound("User not found")
    return user


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    if "\x00" in email:
        # No stored email has one, and PostgreSQL refuses NUL in a query's text.
        return None
    return await session.scalar(select(User).where(User.email == email))


async def _flush_unique_email(session: AsyncSession) -> None:
    # The unique constraint is the truth about duplicates, also when two
    # requests race past the courtesy check.
    try:
        await session.flush()
    except IntegrityError as exc:
        if "email" in str(exc.orig):
            raise Conflict(EMAIL_IN_USE) from exc
        raise


# What the audit trail shows of a user's change (never the password or its hash).
AUDITED_FIELDS = ("name", "email", "is_active", "is_admin")


def _audited(user: User) -> dict[str, object]:
    return {field: getattr(user, field) for field in AUDITED_FIELDS}


async def create_user(
    session: AsyncSession,
    *,
    data: UserCreate,
    hashed_password: str,
    is_active: bool = True,
    is_admin: bool = False,
) -> User:
    """Create a user in `session` (an admin's or the command line's doing: sign-ups take
    the fast path), with the hash of their password made beforehand."""
    if await find_user_by_email(session, data.email) is not None:
        raise Conflict(EMAIL_IN_USE)
    user = User(
        name=data.name,
        email=data.email,
        hashed_password=hashed_password,
        is_active=is_active,
        is_admin=is_admin,
    )
    session.add(user)
    await _flush_unique_email(session)
    created = {field: (None, value) for field, value in _audited(user).items()}
    await audit.record(
        session, action="user.create", target_type="user", target_id=user.id, changes=created
    )
    return user


async def promote_user(session: AsyncSession, user: User) -> User:
    """Make `user` an active admin (`bazaar create-admin` on an existing account)."""
    before = _audited(user)
    user.is_admin = True
    user.is_active = True
    await _record_update(session, user, before)
    return user


async def _record_update(session: AsyncSession, user: User, before: dict[str, object]) -> None:
    difference = audit.changed(before, _audited(user))
    if difference:
        await audit.record(
            session, action="user.update", target_type="user", target_id=user.id, changes=difference
        )


@dataclass(frozen=True)
class NewPassword:
    """A password change, hashed before any connection is held: the new hash, and the hash
    the caller proved they knew (when they change their own), which must still be stored."""

    hashed: str
    replaces: str | None


def check_may_address(caller: UserOut | AnyRow, user_id: int) -> None:
    """Forbidden unless `caller` is the user `user_id` or an admin."""
    if caller.id != user_id and not caller.is_admin:
        raise Forbidden("You can only do this for your own account")


async def new_password(
    executor: Executor,
    passwords: Passwords,
    *,
    bearer: Bearer,
    user_id: int,
    data: UserUpdate,
) -> NewPassword:
    """The hashed password change `data` asks for, checked by the rules of who may change
    it: a user changing their own gives the current one; an admin need not.

    Hashing takes tens of milliseconds of CPU: it runs before the change holds a pooled
    connection (or SQLite's write lock), so that other requests keep theirs flowing. The
    caller and the user are read first, in one call, and the connection given back.
    """
    caller, email = await executor.read(_caller_and_email, bearer, user_id)
    changes = data.model_dump(exclude_unset=True)
    # The rest of the rules held when `data` was read (its `Password` type).
    problem = email_problem(changes["password"], email=changes.get("email", email))
    if problem is not None:
        raise InvalidInput(loc=("body", "password"), msg=problem, value=None)
    replaces = None
    if caller.id == user_id:
        current = changes.get("current_password")
        matches, _ = await passwords.verify(current or "", caller.hashed_password)
        if current is None or not matches:
            raise Forbidden("current_password is missing or wrong")
        replaces = caller.hashed_password
    return NewPassword(await passwords.hash(changes["password"]), replaces)


def _caller_and_email(connection: Runs, bearer: Bearer, user_id: int) -> tuple[AnyRow, str]:
    """The caller (Unauthorized if their token no longer holds), once they may address
    `user_id`, and that user's email (NotFound for no such user)."""
    caller = signed_in_user(connection, bearer)
    check_may_address(caller, user_id)
    email: str = caller.email if caller.id == user_id else read_user(connection, user_id).email
    return caller, email


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
    before = _audited(user)
    if password is not None:
        if password.replaces is not None and password.replaces != user.hashed_password:
            # Changed by another request since the caller proved the old one.
            raise Forbidden("current_password is missing or wrong")
        await set_password(session, user, password.hashed)
    if changes.get("is_active") is False and user.is_active:
        # Deactivated: signed out everywhere (a reactivated account logs in afresh).
        await end_sessions(session, user.id)
    if "email" in changes and changes["email"] != user.email:
        if await find_user_by_email(session, changes["email"]) is not None:
            raise Conflict(EMAIL_IN_USE)
        user.email = changes["email"]
    for field in ("name", "is_active", "is_admin"):
        if field in changes:
            setattr(user, field, changes[field])
    await _record_update(session, user, before)
    await _flush_unique_email(session)
    return user


async def set_password(session: AsyncSession, user: User, hashed: str) -> None:
    """Give the user the password `hashed` is the hash of; every session of theirs ends
    (this one too): whoever held one must prove the new password."""
    user.hashed_password = hashed
    # That it changed, never what to.
    await audit.record(
        session, action="user.password_change", target_type="user", target_id=user.id
    )
    await end_sessions(session, user.id)


async def rename_user(session: AsyncSession, user: User, *, name: str) -> User:
    before = _audited(user)
    user.name = name
    await _record_update(session, user, before)
    await session.flush()
    return user


async def delete_user(session: AsyncSession, user: User) -> None:
    """Remove the user; their items go with them (ON DELETE CASCADE)."""
    gone = {field: (value, None) for field, value in _audited(user).items()}
    await audit.record(
        session, action="user.delete", target_type="user", target_id=user.id, changes=gone
    )
    await session.delete(user)
    await session.flush()
