"""Validated field types that several domains' schemas share."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    GetJsonSchemaHandler,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


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


@dataclass(frozen=True)
class _Pattern:
    """Tells the API docs, as a `pattern`, what the validators of a type check."""

    regex: str
    # Lengths the pattern states itself (as they are counted after trimming).
    counts_length: bool = False

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.regex
        if self.counts_length:
            schema.pop("minLength", None)
            schema.pop("maxLength", None)
        return schema


# No control characters (Unicode category Cc): C0, DEL and C1.
_TEXT = r"[^\x00-\x1f\x7f-\x9f]"
_PRINTABLE = _Pattern(rf"^{_TEXT}*$")
# ...and 1 to 100 of them once surrounding whitespace is trimmed.
_EDGE = r"[^\s\x00-\x1f\x7f-\x9f]"
_NAME = _Pattern(rf"^\s*{_EDGE}(?:{_TEXT}{{0,98}}{_EDGE})?\s*$", counts_length=True)
_NO_NUL = _Pattern(r"^[^\x00]*$")
# Not at a special-use domain (`.test`, `.localhost`...): those can have no mailbox.
_SPECIAL_USE = "|".join(
    "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in name)
    for name in SPECIAL_USE_DOMAIN_NAMES
)
_MAILABLE = _Pattern(rf"^(?![\s\S]*[.@]({_SPECIAL_USE})\s*$)")

# The range of an `integer` primary key: ids outside it cannot exist.
MAX_ID = 2**31 - 1
PASSWORD_MAX_LENGTH = 128

# Free text to search for: anything printable a name could hold.
SearchText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_no_control_characters),
    _PRINTABLE,
]

Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_no_control_characters),
    _NAME,
]

Password = Annotated[
    str,
    StringConstraints(min_length=8, max_length=PASSWORD_MAX_LENGTH),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_no_nul),
    _NO_NUL,
]

# A password offered as proof: any length up to the maximum, so that a wrong
# one is refused as wrong (403), not as malformed.
CurrentPassword = Annotated[
    str,
    StringConstraints(max_length=PASSWORD_MAX_LENGTH),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_no_nul),
    _NO_NUL,
]

Email = Annotated[
    EmailStr,
    StringConstraints(strip_whitespace=True, max_length=200),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_normalise_email),
    _MAILABLE,
]


class InputModel(BaseModel):
    """A request body: unknown fields are a mistake worth reporting, and so are wrong types."""

    # Strict: a JSON value of another type than documented (`"price": false` or `"12"`,
    # `"is_admin": 1`) is refused, not coerced.
    model_config = ConfigDict(extra="forbid", strict=True)


def _without_null(schema: dict[str, Any]) -> None:
    for field in schema.get("properties", {}).values():
        options = field.pop("anyOf", None)
        if options is not None:
            options = [option for option in options if option != {"type": "null"}]
            field.update(options[0] if len(options) == 1 else {"anyOf": options})


class PatchModel(InputModel):
    """A partial update: fields may be left out, but not sent as null."""

    # The docs say so too: a field's schema does not admit null.
    model_config = ConfigDict(json_schema_extra=_without_null)

    @field_validator("*", mode="before")
    @classmethod
    def _omit_rather_than_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("leave the field out instead of sending null")
        return value
