"""Validated field types that several domains' schemas share."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    StringConstraints,
    field_validator,
)


def _no_unpaired_surrogates(value: object) -> object:
    if isinstance(value, str) and any(unicodedata.category(c) == "Cs" for c in value):
        raise ValueError("must be valid Unicode text (no unpaired surrogates)")
    return value


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("must not contain control characters")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _normalise_email(value: str) -> str:
    return value.lower()


# The range of an `integer` primary key: ids outside it cannot exist.
MAX_ID = 2**31 - 1
PASSWORD_MAX_LENGTH = 128

# Free text to search for: anything printable a name could hold.
SearchText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_no_control_characters),
]

Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_no_control_characters),
]

Password = Annotated[
    str,
    StringConstraints(min_length=8, max_length=PASSWORD_MAX_LENGTH),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_no_nul),
]

# A password offered as proof: any length up to the maximum, so that a wrong
# one is refused as wrong (403), not as malformed.
CurrentPassword = Annotated[
    str,
    StringConstraints(max_length=PASSWORD_MAX_LENGTH),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_no_nul),
]

Email = Annotated[
    EmailStr,
    StringConstraints(strip_whitespace=True, max_length=200),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_normalise_email),
]


class InputModel(BaseModel):
    """A request body: unknown fields are a mistake worth reporting."""

    model_config = ConfigDict(extra="forbid")


class PatchModel(InputModel):
    """A partial update: fields may be left out, but not sent as null."""

    @field_validator("*", mode="before")
    @classmethod
    def _omit_rather_than_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("leave the field out instead of sending null")
        return value
