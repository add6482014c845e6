"""What the operations endpoints answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Status(BaseModel):
    status: Literal["ok"] = "ok"
