"""What the auth API takes and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Generous for a refresh token (ours are 43 characters), small enough to refuse junk early.
REFRESH_TOKEN_MAX_LENGTH = 256


class TokenRequest(BaseModel):
    """The OAuth2 token request: a password (RFC 6749 §4.3), or a refresh token (§6).

    Which fields are required depends on `grant_type`: the route checks them.
    """

    # Clients send what their OAuth2 library sends (`scope`, `client_id`...): not refused.
    model_config = ConfigDict(extra="ignore")

    grant_type: Literal["password", "refresh_token"] = Field(
        default="password", description="`password` (the default) or `refresh_token`"
    )
    username: str | None = Field(default=None, description="Your email (`grant_type=password`)")
    password: str | None = Field(default=None, description="Your password (`grant_type=password`)")
    refresh_token: str | None = Field(
        default=None,
        max_length=REFRESH_TOKEN_MAX_LENGTH,
        description="The refresh token of your session (`grant_type=refresh_token`)",
    )


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str = Field(description="Good for one use, with `grant_type=refresh_token`")
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires")


class SessionOut(BaseModel):
    id: str
    created_at: datetime
    last_used_at: datetime = Field(description="The login, or the latest refresh")
    expires_at: datetime = Field(description="When the session ends, whatever its use")
    user_agent: str | None
    ip: str | None
    current: bool = Field(description="Whether this is the session of the token used to ask")
