"""`POST /auth/token`: the OAuth2 password flow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from bazaar.auth import service
from bazaar.auth.schemas import Token
from bazaar.auth.throttle import LoginThrottle
from bazaar.db import ReadSessionDep
from bazaar.errors import BODY_ERRORS, Unauthorized
from bazaar.security import Passwords, Tokens

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/token",
    responses=BODY_ERRORS
    | {
        401: {"description": "Incorrect email or password"},
        429: {"description": "Throttled"},
    },
)
async def login(
    request: Request,
    response: Response,
    session: ReadSessionDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> Token:
    """Exchange an email (as `username`) and password for a bearer token."""
    throttle: LoginThrottle = request.app.state.login_throttle
    passwords: Passwords = request.app.state.passwords
    tokens: Tokens = request.app.state.tokens
    email = form.username.strip().lower()
    address = request.client.host if request.client else "unknown"
    await throttle.admit(email=email, address=address)
    user = await service.authenticate(
        session, email=email, password=form.password, passwords=passwords
    )
    if user is None:
        await throttle.failed(address=address)
        raise Unauthorized("Incorrect email or password")
    await throttle.succeeded(email=email)
    response.headers["Cache-Control"] = "no-store"
    return Token(
        access_token=tokens.issue(user.id, user.hashed_password),
        expires_in=int(tokens.lifetime.total_seconds()),
    )
