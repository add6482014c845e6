"""Signing in to the admin UI: the login of `POST /auth/token`, and a signed cookie.

A sign-in opens a session, as a login of the API does (`auth.changes.open_session`):
it is listed with the admin's others, and ends as they do (sign-out, revocation, a
password change, a deactivation). The cookie is Starlette's `SessionMiddleware`, the
one SQLAdmin's backend is built on: a signed (not encrypted) JSON of the admin's id
and session id, re-signed on every response, so that it expires after 8 idle hours.
The admin and their session are read again on every request: a deactivated or demoted
admin, or one whose session ended, is out at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from typing import TYPE_CHECKING

from fastapi import FastAPI
from sqladmin.authentication import AuthenticationBackend
from starlette.requests import Request
from starlette.responses import Response

from bazaar.addresses import address_of
from bazaar.admin.queries import signed_in_admin
from bazaar.audit.context import act_as
from bazaar.auth import changes as sessions
from bazaar.auth.login import log_in
from bazaar.config import Settings
from bazaar.db.unit_of_work import transaction
from bazaar.errors import BazaarError, NotFound
from bazaar.fields import canonical_email
from bazaar.services import Services
from bazaar.users.schemas import UserOut

if TYPE_CHECKING:
    from sqladmin.templating import Jinja2Templates

COOKIE = "bazaar_admin"
COOKIE_PATH = "/admin"
IDLE_SECONDS = 8 * 60 * 60
# Starlette signs the cookie with the key it is given alone: a key derived for this
# cookie keeps its signatures apart from anything else Bazaar signs with the secret.
_SALT = b"bazaar.admin-cookie"


def cookie_key(secret: str) -> str:
    return hmac.new(secret.encode(), _SALT, hashlib.sha256).hexdigest()


def signed_in(request: Request) -> UserOut:
    """The admin `AdminAuth.authenticate` let in for this request."""
    admin: UserOut = request.state.bazaar_admin
    return admin


class AdminAuth(AuthenticationBackend):
    """Only active admins get in; everything else goes back to the sign-in page."""

    templates: Jinja2Templates

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        super().__init__(
            secret_key=cookie_key(settings.secret),
            session_cookie=COOKIE,
            max_age=IDLE_SECONDS,
            path=COOKIE_PATH,
            same_site="strict",
            https_only=settings.public_url.startswith("https://"),
        )
        self._app = app

    def services(self) -> Services:
        found: Services = self._app.state.services
        return found

    async def login(self, request: Request) -> Response | bool:
        form = await request.form()
        email = canonical_email(str(form.get("username") or ""))
        password = str(form.get("password") or "")
        try:
            opened = await log_in(
                self.services(),
                email=email,
                password=password,
                address=address_of(request),
                user_agent=request.headers.get("user-agent"),
                admins_only=True,
            )
        except BazaarError as exc:
            # Too many attempts, too busy hashing, a password changed meanwhile: said on the
            # page, with its status.
            return await self._refused(request, exc)
        if opened is None:
            return False
        request.session.clear()
        request.session.update({"user": opened.user_id, "session": opened.session_id})
        return True

    async def _refused(self, request: Request, exc: BazaarError) -> Response:
        page = await self.templates.TemplateResponse(
            request, "sqladmin/login.html", {"error": exc.detail}, status_code=exc.status_code
        )
        page.headers.update(exc.headers)
        return page

    async def logout(self, request: Request) -> Response | bool:
        # A GET (SQLAdmin's): harmless from elsewhere, where the Strict cookie is not sent.
        user_id, session_id = request.session.get("user"), request.session.get("session")
        request.session.clear()
        if isinstance(user_id, int) and isinstance(session_id, str):
            act_as(user_id)
            # NotFound: ended already (revoked, or by a password change).
            async with transaction(self.services()) as session:
                with contextlib.suppress(NotFound):
                    await sessions.end_session(session, user_id=user_id, session_id=session_id)
        return False

    async def authenticate(self, request: Request) -> Response | bool:
        user_id, session_id = request.session.get("user"), request.session.get("session")
        if not isinstance(user_id, int) or not isinstance(session_id, str):
            return False
        row = await self.services().executor.read(signed_in_admin, user_id, session_id)
        if row is None:
            # Out at once, and the cookie with them.
            request.session.clear()
            return False
        request.state.bazaar_admin = UserOut.model_validate(row, from_attributes=True)
        act_as(row.id)
        return True

    async def get_user_id(self, request: Request) -> int | None:
        return signed_in(request).id
