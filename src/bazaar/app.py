"""`create_app(settings)`: the wiring, and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from bazaar.auth.router import router as auth_router
from bazaar.auth.throttle import LoginThrottle
from bazaar.config import Settings
from bazaar.db import create_engine
from bazaar.errors import install_error_handlers
from bazaar.items.router import router as items_router
from bazaar.pagination import Cursors
from bazaar.security import Passwords, Tokens
from bazaar.users.router import router as users_router


class TrailingSlash:
    """Serves `/users/` and `/users` alike, without a redirect: routes are declared bare."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope["path"] = path.rstrip("/") or "/"
                scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    """A Bazaar application for `settings`; its lifespan owns the engine."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Bazaar",
        summary="Sign up, log in, list items with a price; anyone can browse them.",
        version="0.1.0",
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.passwords = Passwords()
    app.state.tokens = Tokens(settings.secret, timedelta(minutes=settings.access_token_minutes))
    app.state.cursors = Cursors(settings.secret)
    app.state.login_throttle = LoginThrottle(settings)

    install_error_handlers(app)
    app.include_router(auth_router)
    app.include_router(users_router)
    app.include_router(items_router)
    app.add_middleware(TrailingSlash)
    return app
