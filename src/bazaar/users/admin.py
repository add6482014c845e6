"""`bazaar create-admin`: create an admin account, or promote an existing user."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker

from bazaar.config import Settings
from bazaar.db.engine import WRITE, create_engine
from bazaar.fields import canonical_email
from bazaar.security import Passwords
from bazaar.users import changes
from bazaar.users.schemas import UserCreate


async def create_admin(
    settings: Settings, *, email: str, name: str, ask_password: Callable[[], str]
) -> bool:
    """Make `email` an active admin; True when the account is new (then a password is asked)."""
    normalised = canonical_email(email)
    passwords = Passwords()
    engine = create_engine(settings)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with sessions() as session, session.begin():
            await session.connection(execution_options={WRITE: True})
            user = await changes.find_user_by_email(session, normalised)
            if user is not None:
                # Whoever runs this command vouches for the address.
                await changes.promote_user(session, user)
                return False
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
            return True
    finally:
        await engine.dispose()
