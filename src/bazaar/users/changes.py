"""Users in the unit of work: changes to accounts, functions of the request's `AsyncSession`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.accounts import changes as accounts
from bazaar.audit import changes as audit
from bazaar.auth.changes import end_sessions
from bazaar.auth.queries import Bearer, signed_in_user
from bazaar.config import Settings
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
AUDITED_FIELDS = ("name", "email", "is_active", "is_admin", "is_verified")


def _audited(user: User) -> dict[str, object]:
    return {field: getattr(user, field) for field in AUDITED_FIELDS}


async def create_user(
    session: AsyncSession,
    *,
    data: UserCreate,
    hashed_password: str,
    is_active: bool = True,
    is_admin: bool = False,
    is_verified: bool = False,
) -> User:
    """Create a user in `session` (an admin's or the command line's doing: sign-ups are
    `sign_up`), with the hash of their password made beforehand."""
    if await find_user_by_email(session, data.email) is not None:
        raise Conflict(EMAIL_IN_USE)
    user = User(
        name=data.name,
        email=data.email,
        hashed_password=hashed_password,
        is_active=is_active,
        is_admin=is_admin,
        is_verified=is_verified,
    )
    session.add(user)
    await _flush_unique_email(session)
    created = {field: (None, value) for field, value in _audited(user).items()}
    await audit.record(
        session, action="user.create", target_type="user", target_id=user.id, changes=created
    )
    return user


async def promote_user(session: AsyncSession, user: User) -> User:
    """Make `user` an active admin with a verified address (`bazaar create-admin` on an
    existing account: whoever runs it vouches for the address)."""
    before = _audited(user)
    user.is_admin = True
    user.is_active = True
    user.is_verified = True
    await _record_update(session, user, before)
    return user


async def _record_update(session: AsyncSession, user: User, before: dict[str, object]) -> None:
    difference = audit.changed(before, _audited(user))
    if difference:
        await audit.record(
            session, action="user.update", target_type="user", target_id=user.id, changes=difference
        )


async def sign_up(
    session: AsyncSession, *, data: UserCreate, hashed_password: str, settings: Settings
) -> User:
    """Sign a new user up, with the hash of their password made beforehand, and mail them a
    link to verify their email, in one transaction.

    No look-up of the email first to save the hash of a taken one: under a burst of
    sign-ups those reads queued for connections with everyone else's (p99 of item reads
    153 ms, server side), and the insert is what decides anyway.
    """
    user = User(name=data.name, email=data.email, hashed_password=hashed_password)
    session.add(user)
    await _flush_unique_email(session)
    await accounts.send_verification(session, user, settings=settings)
    return user


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
    replaces = await _proof(passwords, caller, user_id, changes.get("current_password"))
    return NewPassword(await passwords.hash(changes["password"]), replaces)


async def proven_password(
    executor: Executor,
    passwords: Passwords,
    *,
    bearer: Bearer,
    user_id: int,
    email: str,
    current_password: str | None,
) -> str | None:
    """For a change of email, which users make to their own account with their current
    password: the stored hash `current_password` was checked against (None when an admin
    changes another's account, or the email is the one stored). Forbidden when it does
    not match."""
    caller, stored_email = await executor.read(_caller_and_email, bearer, user_id)
    if email == stored_email:
        return None
    return await _proof(passwords, caller, user_id, current_password)


async def _proof(
    passwords: Passwords, caller: AnyRow, user_id: int, current: str | None
) -> str | None:
    if caller.id != user_id:
        return None
    matches, _ = await passwords.verify(current or "", caller.hashed_password)
    if current is None or not matches:
        raise Forbidden("current_password is missing or wrong")
    proven: str = caller.hashed_password
    return proven


def _caller_and_email(connection: Runs, bearer: Bearer, user_id: int) -> tuple[AnyRow, str]:
    """The caller (Unauthorized if their token no longer holds), once they may address
    `user_id`, and that user's email (NotFound for no such user)."""
    caller = signed_in_user(connection, bearer)
    check_may_address(caller, user_id)
    email: str = caller.email if caller.id == user_id else read_user(connection, user_id).email
    return caller, email


async def set_password(
    session: AsyncSession, user: User, hashed: str, *, reset: bool = False
) -> None:
    """Give `user` the password whose hash is `hashed`: the one way a password is set (a
    change, or a `reset` by mailed link). Every session of theirs ends (this one too):
    whoever held one must prove the new password. Links to reset the old one end with it."""
    user.hashed_password = hashed
    # That it changed, never what to.
    action = "user.password_reset" if reset else "user.password_change"
    await audit.record(session, action=action, target_type="user", target_id=user.id)
    await end_sessions(session, user.id)
    await accounts.end_tokens(session, user_id=user.id, purpose=accounts.Purpose.RESET_PASSWORD)
    await session.flush()


async def update_user(
    session: AsyncSession,
    user: User,
    *,
    data: UserUpdate,
    caller: UserOut,
    settings: Settings,
    password: NewPassword | None = None,
    proven: str | None = None,
) -> User:
    """Apply the fields `data` sets, by the rules of who may change what; `password` is
    the change `new_password` made of `data`, `proven` the hash `proven_password` checked
    (for users changing their own email).

    Users who change their own email must verify the new one: a link goes to it, and a
    notice to the old one. An admin who changes someone else's vouches for it.
    """
    changes = data.model_dump(exclude_unset=True)
    if ("password" in changes) != (password is not None):
        raise ValueError("a password change is hashed by `new_password` first")
    if isinstance(data, UserAdminUpdate) and (
        {"is_active", "is_admin"} & changes.keys() and not caller.is_admin
    ):
        raise Forbidden("Only an admin can change is_active or is_admin")
    before = _audited(user)
    new_email = changes.get("email", user.email) != user.email
    own = caller.id == user.id
    if own and (password is not None or new_email):
        proof = password.replaces if password is not None else proven
        if proof is None or proof != user.hashed_password:
            # Missing, or changed by another request since the caller proved the old one.
            raise Forbidden("current_password is missing or wrong")
    if password is not None:
        await set_password(session, user, password.hashed)
    if changes.get("is_active") is False and user.is_active:
        # Deactivated: signed out everywhere (a reactivated account logs in afresh).
        await end_sessions(session, user.id)
    old_email = user.email
    if new_email:
        if await find_user_by_email(session, changes["email"]) is not None:
            raise Conflict(EMAIL_IN_USE)
        user.email = changes["email"]
        if own:
            user.is_verified = False
    for field in ("name", "is_active", "is_admin"):
        if field in changes:
            setattr(user, field, changes[field])
    await _record_update(session, user, before)
    await _flush_unique_email(session)
    if new_email and own:
        await accounts.send_verification(session, user, settings=settings)
        await accounts.send_email_changed(session, user, old_email=old_email, settings=settings)
    return user


async def reset_password(session: AsyncSession, *, token: str, hashed: str) -> User:
    """Use a reset link: its user gets the password whose hash is `hashed`.

    The link reached them at their current address, so that address is verified too.
    """
    user = await accounts.use_token(session, token, accounts.Purpose.RESET_PASSWORD)
    await set_password(session, user, hashed, reset=True)
    user.is_verified = True
    await session.flush()
    return user


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
