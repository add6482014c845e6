"""Reading the audit trail back in tests."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from bazaar.audit.models import AuditEvent


async def audit_events(app: FastAPI) -> list[dict[str, Any]]:
    """Every row of `audit_events`, oldest first, as plain dicts."""
    async with app.state.services.engine.connect() as connection:
        result = await connection.execute(select(AuditEvent.__table__).order_by(AuditEvent.id))
        return [dict(row._mapping) for row in result]
