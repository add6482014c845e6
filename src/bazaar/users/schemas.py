"""What the users API reads and writes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from bazaar.fields import CurrentPassword, Email, InputModel, Name, Password, PatchModel


class UserCreate(InputModel):
    name: Name
    email: Email
    password: Password


class UserUpdate(PatchModel):
    """Changes a user makes to their own account."""

    name: Name | None = None
    email: Email | None = None
    password: Password | None = None
    current_password: CurrentPassword | None = None


class UserAdminUpdate(UserUpdate):
    """Changes to any account; `is_active` and `is_admin` are for admins only."""

    is_active: bool | None = None
    is_admin: bool | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    email: str
    is_active: bool
    is_admin: bool
    created_at: datetime
