"""`bazaar create-admin`: create an admin account, or promote an existing user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker

from bazaar.config import Settings
from bazaar.db.engine import WRITE, create_engine
from bazaar.fields import canonical_email
from bazaar.security import Passwords
from bazaar.users import changes
from bazaar.users.schemas import UserCreate

Outcome = Literal["created", "promoted", "already an admin"]


async def create_admin(
    settings: Settings, *, email: str, name: str | None, ask_password: Callable[[], str]
) -> Outcome:
    """Make `email` an active admin; a new account needs a `name`, and a password is asked."""
    normalised = canonical_email(email)
    passwords = Passwords()
    engine = create_engine(settings)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with sessions() as session, session.begin():
            await session.connection(execution_options={WRITE: True})
            user = await changes.find_user_by_email(session, normalised)
            if user is not None:
                already = user.is_admin and user.is_active
                # Whoever runs this command vouches for the address.
                await changes.promote_user(session, user)
                return "already an admin" if already else "promoted"
            if name is None:
                raise SystemExit(
                    f"bazaar: no user has the email {normalised}: "
                    "give --name to create an admin account for it"
                )
            try:
                data = UserCreate.model_validate(
                    {"name": name, "email": email, "password": ask_password()}
                )
            except ValidationError as exc:
                problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
                raise SystemExit(f"bazaar: {problems}") from None
            hashed = await passwords.hash(data.password)
            # Whoever runs this command vouches for the address.
            await changes.create_user(
                session, data=data, hashed_password=hashed, is_admin=True, is_verified=True
            )
            return "created"
    finally:
        await engine.dispose()
