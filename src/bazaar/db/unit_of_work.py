"""The ORM's unit of work: one session per request, one transaction, committed before the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.services import Services, services


@asynccontextmanager
async def unit_of_work(request: Request, *, write: bool = True) -> AsyncIterator[AsyncSession]:
    """The request's session in one transaction: committed when the block ends, rolled back
    if it raises. For routes that must do slow work (hashing a password) before they hold
    a connection; the others get theirs from `SessionDep`."""
    async with transaction(services(request), write=write) as session:
        yield session


@asynccontextmanager
async def transaction(app: Services, *, write: bool = True) -> AsyncIterator[AsyncSession]:
    """A session in one transaction, as `unit_of_work` gives a request, for work that
    runs outside a route (the admin UI's writes, the background)."""
    # The session takes a connection when it first runs a statement, not before:
    # a request refused on the way in (a bad token) costs no database work.
    async with app.gate.place():
        session = app.sessionmakers[write]()
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            await session.close()


def _unit_of_work(*, write: bool) -> Callable[[Request], AsyncIterator[AsyncSession]]:
    async def session_dependency(request: Request) -> AsyncIterator[AsyncSession]:
        async with unit_of_work(request, write=write) as session:
            yield session

    return session_dependency


# The request's session: one transaction, committed before the response is sent
# (rolled back on any error); on SQLite it takes the write lock when it begins.
SessionDep = Annotated[AsyncSession, Depends(_unit_of_work(write=True), scope="function")]
