"""What the operations endpoints answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Status(BaseModel):
    status: Literal["ok"] = "ok"


class Welcome(BaseModel):
    """What `GET /` answers: where to go from here."""

    name: str
    version: str
    docs: str
    openapi: str
    links: dict[str, str]
