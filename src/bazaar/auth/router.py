"""`/auth`: the OAuth2 token endpoint (passwords and refresh tokens), logout and sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError

from bazaar.addresses import address_of
from bazaar.auth import changes, queries
from bazaar.auth.changes import Issued
from bazaar.auth.dependencies import CheckedToken, session_caller
from bazaar.auth.login import lifetimes, log_in
from bazaar.auth.schemas import SessionOut, Token, TokenRequest
from bazaar.db.unit_of_work import unit_of_work
from bazaar.errors import BODY_ERRORS, UNAUTHENTICATED, Responses, Unauthorized
from bazaar.fields import canonical_email
from bazaar.services import services

router = APIRouter(prefix="/auth", tags=["auth"])

_NO_SESSION: Responses = {404: {"description": "Session not found (or not yours)"}}


@router.post(
    "/token",
    responses=BODY_ERRORS
    | {
        401: {
            "description": "Incorrect email or password; "
            "or an unknown, expired or used refresh token"
        },
        429: {"description": "Too many failed attempts: see Retry-After"},
        503: {"description": "Too busy checking passwords: see Retry-After"},
    },
)
async def token(
    request: Request, response: Response, form: Annotated[TokenRequest, Form()]
) -> Token:
    """Log in with an email (as `username`) and password, which opens a session; or, with
    `grant_type=refresh_token`, trade the session's refresh token for a new pair.

    A refresh token is good for one use. Presented again within 10 seconds (two tabs
    refreshing at once) it gets a fresh pair of the same session; later, it ends the
    session, as a stolen copy would be.
    """
    response.headers["Cache-Control"] = "no-store"
    if form.grant_type == "refresh_token":
        _require(refresh_token=form.refresh_token)
        issued = await _refresh(request, form.refresh_token or "")
    else:
        _require(username=form.username, password=form.password)
        issued = await _log_in(request, form.username or "", form.password or "")
    app = services(request)
    now = datetime.now(UTC)
    return Token(
        access_token=app.tokens.issue(issued.user_id, issued.session_id, now=now),
        expires_in=int(app.tokens.lifetime.total_seconds()),
        refresh_token=issued.refresh_token,
        refresh_expires_in=int((issued.refresh_expires_at - now).total_seconds()),
    )


def _require(**fields: str | None) -> None:
    """A 422 naming each field the grant needs and the form lacks, as FastAPI names them."""
    missing = [name for name, value in fields.items() if not value]
    if missing:
        raise RequestValidationError(
            [
                {"type": "missing", "loc": ("body", name), "msg": "Field required", "input": None}
                for name in missing
            ]
        )


async def _log_in(request: Request, username: str, password: str) -> Issued:
    opened = await log_in(
        services(request),
        email=canonical_email(username),
        password=password,
        address=address_of(request),
        user_agent=request.headers.get("user-agent"),
    )
    if opened is None:
        raise Unauthorized("Incorrect email or password")
    return opened


async def _refresh(request: Request, token: str) -> Issued:
    async with unit_of_work(request) as session:
        issued = await changes.refresh(
            session, token=token, lifetimes=lifetimes(services(request).settings)
        )
    # Refused after the commit: a reused token's session ends even though the request fails.
    if issued is None:
        raise Unauthorized("Invalid or expired refresh token")
    return issued


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHENTICATED)
async def logout(bearer: CheckedToken, request: Request) -> None:
    """End this session: its access and refresh tokens stop working at once."""
    async with unit_of_work(request) as session:
        caller = await session_caller(session, bearer)
        await changes.end_session(session, user_id=caller.id, session_id=bearer.claims.session_id)


@router.get("/sessions", response_model=list[SessionOut], responses=UNAUTHENTICATED)
async def list_sessions(bearer: CheckedToken, request: Request) -> list[SessionOut]:
    """Where you are signed in: your open sessions, most recently used first."""
    _, rows = await services(request).executor.read(queries.open_sessions, bearer)
    current = bearer.claims.session_id
    return [
        SessionOut.model_validate({**row._mapping, "current": row.id == current}) for row in rows
    ]


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=UNAUTHENTICATED | _NO_SESSION,
)
async def end_session(
    session_id: Annotated[str, Path(max_length=64)], bearer: CheckedToken, request: Request
) -> None:
    """End one of your sessions (this one too, if you name it)."""
    async with unit_of_work(request) as session:
        caller = await session_caller(session, bearer)
        await changes.end_session(session, user_id=caller.id, session_id=session_id)


@router.delete("/sessions", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHENTICATED)
async def end_all_sessions(bearer: CheckedToken, request: Request) -> None:
    """Sign out everywhere: every session of yours ends, this one too."""
    async with unit_of_work(request) as session:
        caller = await session_caller(session, bearer)
        await changes.end_sessions(session, caller.id)
