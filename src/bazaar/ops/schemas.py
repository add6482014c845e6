"""What the operations endpoints answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Status(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok"] = "ok"
    # Each database role reached: "primary", and "replica" when one is configured, with
    # its state ("ok", "lagging" past BAZAAR_REPLICA_MAX_LAG_MS, or "unreachable").
    databases: dict[str, str]
