"""`/account/verify-email` and `/account/reset-password`: the pages the mails link to.

GET shows a button or a form and never uses a link up (mail scanners follow links);
only POST acts. Server-rendered, with no script and nothing from elsewhere, and no
referrer sent on: the token is in the URL.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import TypeAdapter, ValidationError

from bazaar.accounts import flows
from bazaar.accounts.changes import Purpose
from bazaar.accounts.mails import templates
from bazaar.errors import BadRequest, InvalidInput
from bazaar.fields import Password
from bazaar.services import services

router = APIRouter(prefix="/account", include_in_schema=False)

HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
DEAD_LINK = "This link is invalid or has expired."

_password = TypeAdapter(Password)
TokenQuery = Annotated[str, Query(max_length=200)]
TokenField = Annotated[str, Form(max_length=200)]


def _page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    page = {"root": root, "token": "", "problem": None, "done": False, "dead": False} | values
    html = templates().get_template(template).render(page)
    return HTMLResponse(html, status_code, headers=HEADERS)


@router.get("/verify-email")
async def verify_email_page(request: Request, token: TokenQuery = "") -> HTMLResponse:
    if not await flows.live_link(services(request), token, Purpose.VERIFY_EMAIL):
        return _page(
            request, "verify-email.html", 400, title="Verify your email", problem=DEAD_LINK
        )
    return _page(request, "verify-email.html", title="Verify your email", token=token)


@router.post("/verify-email")
async def verify_email(request: Request, token: TokenField) -> HTMLResponse:
    try:
        await flows.verify_email(services(request), token)
    except BadRequest:
        return _page(
            request, "verify-email.html", 400, title="Verify your email", problem=DEAD_LINK
        )
    return _page(request, "verify-email.html", title="Email verified", done=True)


@router.get("/reset-password")
async def reset_password_page(request: Request, token: TokenQuery = "") -> HTMLResponse:
    title = "Choose a new password"
    if not await flows.live_link(services(request), token, Purpose.RESET_PASSWORD):
        return _page(request, "reset-password.html", 400, title=title, dead=True, problem=DEAD_LINK)
    return _page(request, "reset-password.html", title=title, token=token)


@router.post("/reset-password")
async def reset_password(
    request: Request, token: TokenField, password: Annotated[str, Form(max_length=1000)]
) -> HTMLResponse:
    title = "Choose a new password"
    try:
        valid = _password.validate_python(password)
        await flows.reset_password(services(request), token=token, password=valid)
    except ValidationError as exc:
        problem = "; ".join(error["msg"] for error in exc.errors())
        return _page(request, "reset-password.html", 422, title=title, token=token, problem=problem)
    except InvalidInput as exc:
        return _page(
            request, "reset-password.html", 422, title=title, token=token, problem=exc.detail
        )
    except BadRequest:
        return _page(request, "reset-password.html", 400, title=title, dead=True, problem=DEAD_LINK)
    return _page(request, "reset-password.html", title="Password changed", done=True)
