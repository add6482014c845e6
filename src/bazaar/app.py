"""`create_app(settings)`: the wiring, and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from bazaar import __version__
from bazaar.accounts.pages import router as account_pages
from bazaar.accounts.router import router as accounts_router
from bazaar.addresses import ClientAddress
from bazaar.admin.site import BASE as ADMIN_BASE
from bazaar.admin.site import mount_admin
from bazaar.audit.context import Attributed
from bazaar.auth.router import router as auth_router
from bazaar.background import Background
from bazaar.config import Settings
from bazaar.db.engine import create_engine, sessionmakers
from bazaar.db.executor import Executor
from bazaar.db.gate import create_gate
from bazaar.db.replica import ROLES, ReadYourWrites, Replica
from bazaar.errors import install_error_handlers
from bazaar.items.router import router as items_router
from bazaar.mail.sender import MailSender, transport_for
from bazaar.middleware import BodyLimit, Head, Observability, TrailingSlash
from bazaar.ops.docs import mount_docs_assets
from bazaar.ops.docs import router as docs_router
from bazaar.ops.metrics import Metrics
from bazaar.ops.readiness import Readiness
from bazaar.ops.router import router as ops_router
from bazaar.pagination import Cursors
from bazaar.pruning import prune_periodically
from bazaar.security import Passwords, Tokens
from bazaar.services import Services
from bazaar.throttle import Throttle
from bazaar.users.router import router as users_router

# SQLAdmin's routes end in a slash where it declares them so (its index is `/admin/`).
ADMIN_PATHS = f"{ADMIN_BASE}/"


class Bazaar(FastAPI):
    """FastAPI with observability around the whole stack, so that even a 500 page has an id."""

    settings: Settings
    metrics: Metrics

    def build_middleware_stack(self) -> ASGIApp:
        settings = self.settings
        stack: ASGIApp = Attributed(
            BodyLimit(super().build_middleware_stack(), settings.max_body_bytes)
        )
        if settings.database_replica_url:
            stack = ReadYourWrites(stack)
        if settings.trusted_proxies:
            stack = ClientAddress(stack, settings.trusted_proxies)
        return Observability(Head(stack), self.metrics)


def _add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Put each router's routes on the application itself.

    `include_router` keeps every router as a node of its own, which each request
    walks (and matches twice) before it reaches a route. The routes need none of
    it: their paths, tags and responses were complete when they were declared.
    """
    for router in routers:
        app.router.routes.extend(router.routes)


def _replica(settings: Settings, metrics: Metrics) -> Replica | None:
    """The replica BAZAAR_DATABASE_REPLICA_URL names, with an engine and a gate of its own."""
    if not settings.database_replica_url:
        return None
    replica_settings = settings.model_copy(update={"database_url": settings.database_replica_url})
    engine = create_engine(replica_settings, autocommit=True)
    return Replica(
        primary_url=settings.database_url,
        replica_url=settings.database_replica_url,
        max_lag_ms=settings.replica_max_lag_ms,
        executor=Executor(engine, create_gate(replica_settings)),
        served={role: metrics.db_reads.labels(role) for role in ROLES},
    )


def create_app(settings: Settings, *, passwords: Passwords | None = None) -> Bazaar:
    """A Bazaar application for `settings`; its lifespan owns the engine and the services.

    `passwords` replaces the production hashing (tests hash at a fraction of its cost).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings, autocommit=True)
        metrics.watch_pool(engine)
        gate = create_gate(settings)
        replica = _replica(settings, metrics)
        executor = Executor(engine, gate, replica)
        mail = MailSender(
            executor,
            transport_for(settings.smtp_url.get_secret_value()),
            metrics,
            mail_from=settings.mail_from,
            poll_seconds=settings.mail_poll_seconds,
            retry_seconds=settings.mail_retry_seconds,
        )
        services = Services(
            settings=settings,
            engine=engine,
            gate=gate,
            executor=executor,
            sessionmakers=sessionmakers(engine),
            readiness=Readiness(engine, replica),
            metrics=metrics,
            tokens=Tokens(settings.secret, timedelta(minutes=settings.access_token_minutes)),
            passwords=passwords or Passwords(),
            cursors=Cursors(settings.secret),
            throttle=Throttle(settings),
            mail=mail,
            background=Background(),
            replica=replica,
        )
        app.state.services = services
        if replica is not None:
            await replica.start()
        metrics.worker_started()
        pruning = asyncio.create_task(
            prune_periodically(services.executor, settings.prune_interval_seconds)
        )
        mail.start()
        try:
            yield
        finally:
            pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruning
            # Work the last requests began (a reset link to mail) ends first, then the
            # sender, while the database is still there for both.
            await services.background.drain()
            await mail.stop()
            await services.readiness.close()
            if replica is not None:
                await replica.close()
                await replica.executor.dispose()
            await engine.dispose()
            services.throttle.close()
            metrics.worker_stopped()

    app = Bazaar(
        title="Bazaar",
        summary="Sign up, log in, list items with a price; anyone can browse them.",
        version=__version__,
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
        # Requests are measured and logged by Bazaar's own middleware: FastAPI's OpenTelemetry
        # hooks would only look for a provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # The docs' order, whatever the order the routes are tried in.
        openapi_tags=[
            {
                "name": "auth",
                "description": (
                    "Log in for a bearer token and a refresh token; your sessions; verify your"
                    " email; reset a password."
                ),
            },
            {"name": "users", "description": "Sign up, your own account, and everyone's."},
            {"name": "items", "description": "Items for sale: anyone browses them."},
            {"name": "operations", "description": "Health, readiness and metrics."},
        ],
    )
    metrics = Metrics()
    app.settings = settings
    app.metrics = metrics

    install_error_handlers(app)
    # Starlette tries routes in order, a microsecond each: the routes most requests
    # take (browsing items) go first.
    _add_routes(
        app,
        items_router,
        users_router,
        auth_router,
        accounts_router,
        account_pages,
        ops_router,
        docs_router,
    )
    mount_docs_assets(app)
    mount_admin(app, settings)
    app.add_middleware(TrailingSlash, keep=ADMIN_PATHS)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Location", "ETag", "Link", "Retry-After"],
            max_age=600,
        )
    return app
