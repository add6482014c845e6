"""`POST /auth/token`: the OAuth2 password flow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from bazaar.addresses import address_of
from bazaar.auth.login import authenticate
from bazaar.auth.schemas import Token
from bazaar.errors import BODY_ERRORS, Unauthorized
from bazaar.fields import canonical_email
from bazaar.services import services

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/token",
    responses=BODY_ERRORS
    | {
        401: {"description": "Incorrect email or password"},
        429: {"description": "Too many failed attempts: see Retry-After"},
        503: {"description": "Too busy checking passwords: see Retry-After"},
    },
)
async def login(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> Token:
    """Exchange an email (as `username`) and password for a bearer token."""
    app = services(request)
    throttle, tokens = app.throttle, app.tokens
    email = canonical_email(form.username)
    attempt = throttle.login(email=email, address=address_of(request))
    # Spent before the password is checked, so that concurrent guesses cannot overshoot.
    await throttle.spend(attempt)
    try:
        user = await authenticate(app.executor, app.passwords, email=email, password=form.password)
    except Exception:
        # Not a failed login: the database or the hashing was unavailable.
        await throttle.give_back(attempt)
        raise
    if user is None:
        raise Unauthorized("Incorrect email or password")
    await throttle.succeeded(attempt)
    response.headers["Cache-Control"] = "no-store"
    return Token(
        access_token=tokens.issue(user.user_id, user.hashed_password),
        expires_in=int(tokens.lifetime.total_seconds()),
    )
