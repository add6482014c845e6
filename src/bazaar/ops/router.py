"""`/health`, `/ready` and `/metrics`: for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from bazaar.errors import Unavailable
from bazaar.ops.schemas import Readiness, Status
from bazaar.services import services

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> Status:
    """The process is up (nothing else is checked)."""
    return Status()


@router.get(
    "/ready",
    responses={503: {"description": "The database is unavailable, or its schema is behind"}},
)
async def ready(request: Request) -> Readiness:
    """The database answers, and its schema is at the newest migration; `databases` names
    the roles reached (the primary, and the replica's state when there is one)."""
    readiness = services(request).readiness
    problem = await readiness.problem()
    if problem is not None:
        raise Unavailable(problem)
    return Readiness(databases=readiness.databases())


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics(request: Request) -> Response:
    """Request counts and latencies by route, method and status; pool and workers in use."""
    # A plain `def`: with several workers this reads their shared files, off the event loop.
    return Response(services(request).metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
