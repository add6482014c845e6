"""What the account endpoints read and answer."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, StringConstraints

from bazaar.fields import Email, InputModel, Password

# Any text up to a sane length: one that no link could carry is an invalid token (400),
# as an unknown one is, not a malformed request.
Token = Annotated[str, StringConstraints(max_length=200)]


class VerifyEmail(InputModel):
    token: Token


class ForgotPassword(InputModel):
    email: Email


class ResetPassword(InputModel):
    token: Token
    password: Password


class Accepted(BaseModel):
    detail: str
