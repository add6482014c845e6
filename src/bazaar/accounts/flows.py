"""What the account endpoints and pages do: the same flows behind JSON and HTML."""

from __future__ import annotations

import logging

from bazaar.accounts import changes, queries
from bazaar.accounts.changes import INVALID_TOKEN, Purpose
from bazaar.auth.dependencies import session_caller
from bazaar.auth.queries import Bearer
from bazaar.db.unit_of_work import transaction
from bazaar.errors import BadRequest, InvalidInput
from bazaar.password_rules import email_problem
from bazaar.services import Services
from bazaar.users import changes as users

logger = logging.getLogger(__name__)


async def verify_email(app: Services, token: str) -> None:
    """Use a verification link up: its user's email is verified."""
    async with transaction(app) as session:
        await changes.verify_email(session, token)


async def resend_verification(app: Services, bearer: Bearer) -> None:
    """A new verification link for the caller (their older ones end), unless verified."""
    async with transaction(app) as session:
        caller = await session_caller(session, bearer)
        if caller.is_verified:
            return
        user = await users.get_user(session, caller.id)
        await changes.send_verification(session, user, settings=app.settings)
    app.mail.wake()


async def forgot_password(app: Services, email: str) -> None:
    """Mail a reset link to the account with this email, if any.

    Run after the response has gone (`Background`): the answer is the same, and as
    quick, whether or not the account exists.
    """
    async with transaction(app) as session:
        queued = await changes.send_reset_link(session, email=email, settings=app.settings)
    if queued:
        app.mail.wake()


async def reset_password(app: Services, *, token: str, password: str) -> None:
    """Use a reset link up: its user gets `password` (by the v2 rules); BadRequest for a
    dead link, InvalidInput for a password the rules refuse."""
    # Looked at before the hash is made, so that a dead link costs no hashing; used up
    # only in the transaction that sets the password.
    owner = await app.executor.read(queries.token_owner, token, Purpose.RESET_PASSWORD)
    if owner is None:
        raise BadRequest(INVALID_TOKEN)
    problem = email_problem(password, email=owner.email)
    if problem is not None:
        raise InvalidInput(loc=("body", "password"), msg=problem, value=None)
    hashed = await app.passwords.hash(password)
    async with transaction(app) as session:
        user = await users.reset_password(session, token=token, hashed=hashed)
    logger.info("password of user %d reset by a mailed link", user.id)


async def live_link(app: Services, token: str, purpose: Purpose) -> bool:
    """Whether a link of `purpose` with this token would work now (without using it)."""
    return await app.executor.read(queries.token_owner, token, purpose) is not None
