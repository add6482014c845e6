"""Writing the audit trail: one function, on the session of the change it records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bazaar.audit.context import attribution
from bazaar.audit.models import AuditEvent
from bazaar.logs import request_id

# Never written to the trail, whatever a caller passes: a row must give nothing away.
SECRET_FIELDS = frozenset(
    {"password", "current_password", "hashed_password", "token", "refresh_token", "token_hash"}
)

# A field's value before and after the change (None for a row created or deleted).
Changes = Mapping[str, tuple[Any, Any]]


def _plain(value: Any) -> Any:
    # JSON holds no datetimes: they are kept as ISO 8601 text.
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The fields whose value differs between `before` and `after`, as (old, new)."""
    return {
        field: (old, after[field])
        for field, old in before.items()
        if field in after and after[field] != old
    }


async def record(
    session: AsyncSession,
    *,
    action: str,
    target_type: str,
    target_id: int | str,
    changes: Changes | None = None,
) -> AuditEvent:
    """Add an event to `session`, to be committed (or rolled back) with the change it
    records; the actor, address and request id are the current request's."""
    secret = SECRET_FIELDS & set(changes or ())
    if secret:
        raise ValueError(f"secrets are never audited: {sorted(secret)}")
    where = attribution()
    rid = request_id.get()
    event = AuditEvent(
        actor_id=where.actor_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        changes=None
        if changes is None
        else {
            field: {"old": _plain(old), "new": _plain(new)} for field, (old, new) in changes.items()
        },
        request_id=None if rid == "-" else rid,
        client_address=where.address,
    )
    session.add(event)
    return event
