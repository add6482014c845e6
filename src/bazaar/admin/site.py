"""`/admin`: SQLAdmin mounted on Bazaar, with its sign-in, its guard and its views."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI
from sqladmin import Admin
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse

from bazaar.admin.auth import AdminAuth
from bazaar.admin.guard import AdminGuard
from bazaar.admin.views import (
    AuditEventAdmin,
    ItemAdmin,
    OutboxAdmin,
    SessionAdmin,
    UserAdmin,
)
from bazaar.config import Settings

BASE = "/admin"
# Bazaar's own pages, beside SQLAdmin's (which stay in its package).
TEMPLATES = Path(__file__).with_name("templates")


class _ReadSessions:
    """SQLAdmin's session factory: the application's, which its lifespan makes after
    SQLAdmin is mounted, so it is looked up on each call."""

    class_ = AsyncSession  # SQLAdmin asks, to know it is async

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def configure(self, **_options: Any) -> None:
        # The application's sessions are configured already (no autoflush wanted either way:
        # SQLAdmin only reads through them).
        return None

    def __call__(self, **options: Any) -> AsyncSession:
        return self._app.state.services.sessionmakers[False](**options)  # type: ignore[no-any-return]


def mount_admin(app: FastAPI, settings: Settings) -> Admin:
    """Serve the admin UI at `/admin`; its templates and assets come with SQLAdmin."""
    auth = AdminAuth(app, settings)
    admin = Admin(
        app,
        session_maker=cast(Any, _ReadSessions(app)),
        base_url=BASE,
        title="Bazaar admin",
        authentication_backend=auth,
        templates_dir=str(TEMPLATES),
        # Outside the cookie's middleware: a refused request is not even read.
        middlewares=[Middleware(AdminGuard, public_url=settings.public_url)],
    )
    auth.templates = admin.templates
    for view in (UserAdmin, ItemAdmin, SessionAdmin, OutboxAdmin, AuditEventAdmin):
        admin.add_view(view)

    async def to_the_index(_request: Request) -> RedirectResponse:
        return RedirectResponse(f"{BASE}/", status_code=307)

    app.router.add_route(BASE, to_the_index, include_in_schema=False)
    return admin
