"""What the users API reads and writes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from bazaar.fields import CurrentPassword, Email, InputModel, Name, Password, PatchModel
from bazaar.password_rules import email_problem


class UserCreate(InputModel):
    name: Name
    email: Email
    password: Password

    @field_validator("password")
    @classmethod
    def _password_without_email(cls, password: str, info: ValidationInfo) -> str:
        # A field validator rather than a model one, so that the error names `password`;
        # fields are checked in order, so a valid `email` is already in `info.data`.
        email = info.data.get("email")
        problem = email_problem(password, email=email) if email is not None else None
        if problem is not None:
            raise ValueError(problem)
        return password


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
    is_verified: bool
    created_at: datetime
