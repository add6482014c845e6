"""`/auth/verify-email`, `/auth/forgot-password`, `/auth/reset-password`: links by mail."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from bazaar.accounts import flows
from bazaar.accounts.schemas import Accepted, ForgotPassword, ResetPassword, VerifyEmail
from bazaar.addresses import address_of
from bazaar.auth.dependencies import CheckedToken
from bazaar.errors import BODY_ERRORS, UNAUTHENTICATED, Responses
from bazaar.services import services

router = APIRouter(prefix="/auth", tags=["auth"])

FORGOT_PASSWORD_ANSWER = "If that account exists, a mail is on its way"  # noqa: S105
_INVALID: Responses = {400: {"description": "Invalid or expired token"}}
_THROTTLED: Responses = {429: {"description": "Too many mails asked for: see Retry-After"}}


@router.post(
    "/verify-email", status_code=status.HTTP_204_NO_CONTENT, responses=BODY_ERRORS | _INVALID
)
async def verify_email(data: VerifyEmail, request: Request) -> None:
    """Verify your email with the token of the link mailed to you."""
    await flows.verify_email(services(request), data.token)


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=UNAUTHENTICATED | _THROTTLED,
)
async def resend_verification(bearer: CheckedToken, request: Request) -> Accepted:
    """Mail yourself a new verification link (older links stop working)."""
    app = services(request)
    await app.throttle.spend(app.throttle.resend(user_id=bearer.claims.user_id))
    await flows.resend_verification(app, bearer)
    return Accepted(detail="A mail is on its way")


@router.post(
    "/forgot-password",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=BODY_ERRORS | _THROTTLED,
)
async def forgot_password(data: ForgotPassword, request: Request) -> Accepted:
    """Ask for a link to reset your password, mailed to your address."""
    app = services(request)
    await app.throttle.spend(
        app.throttle.forgot_password(email=data.email, address=address_of(request))
    )
    # The look-up and the mail happen after the answer: whether the account exists
    # shows neither in the answer nor in its time.
    app.background.spawn(flows.forgot_password(app, data.email), name="forgot-password")
    return Accepted(detail=FORGOT_PASSWORD_ANSWER)


@router.post(
    "/reset-password", status_code=status.HTTP_204_NO_CONTENT, responses=BODY_ERRORS | _INVALID
)
async def reset_password(data: ResetPassword, request: Request) -> None:
    """Set a new password with the token of the link mailed to you; every session ends."""
    await flows.reset_password(services(request), token=data.token, password=data.password)
