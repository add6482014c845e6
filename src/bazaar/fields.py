"""Validated field types that several domains' schemas share."""

from __future__ import annotations

import functools
import sys
import unicodedata
from collections.abc import Callable, Iterable
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
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    validate_email,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from bazaar.password_rules import (
    BLANK_CATEGORIES,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    normalise_password,
    password_problem,
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


# What a name may not hold: controls (Cc); format characters (Cf), which draw nothing yet
# reorder or hide the text around them (bidi overrides and isolates, zero-width spaces, the
# byte-order mark, soft hyphens); private-use (Co), surrogate (Cs) and unassigned (Cn) code
# points, which no two fonts or Unicode versions show alike.
_HIDDEN = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})
_ZWJ = "\u200d"
_EMOJI_STYLE = "\ufe0f"
# Python knows no Emoji property. Every emoji that a ZWJ sequence joins (people, hearts,
# gender signs, tools, hair, skin tones) lies in these blocks: Miscellaneous Technical to
# Miscellaneous Symbols and Arrows, and the pictographic blocks of plane 1.
_PICTOGRAPHS = ((0x2300, 0x2BFF), (0x1F000, 0x1FAFF))
# Letters and symbols drawn as nothing: the Hangul fillers and the blank Braille pattern.
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _is_pictograph(char: str) -> bool:
    return any(low <= ord(char) <= high for low, high in _PICTOGRAPHS)


def _joins_emoji(text: str, index: int) -> bool:
    """Whether the joiner at `index` stands between two emoji (the first maybe emoji-styled)."""
    before = index - 1
    if before > 0 and text[before] == _EMOJI_STYLE:
        before -= 1
    return (
        before >= 0
        and index + 1 < len(text)
        and _is_pictograph(text[before])
        and _is_pictograph(text[index + 1])
    )


def _is_visible(char: str) -> bool:
    return unicodedata.category(char)[0] in "LNPS" and char not in _BLANKS


def _shows_as_written(value: str) -> str:
    for index, char in enumerate(value):
        if unicodedata.category(char) in _HIDDEN and not (
            char == _ZWJ and _joins_emoji(value, index)
        ):
            raise ValueError(
                "must not contain control, formatting, private-use or unassigned characters"
                f" (it holds U+{ord(char):04X})"
            )
    if not any(map(_is_visible, value)):
        raise ValueError("must contain a letter, digit, punctuation mark or symbol")
    return value


def _acceptable_password(value: str) -> str:
    problem = password_problem(value, email=None)
    if problem is not None:
        raise ValueError(problem)
    return normalise_password(value)


def _fold(text: str) -> str:
    # Normalised again, as case folding may undo it ("ǰ" folds to "j" and a combining caron).
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def canonical_email(text: str) -> str:
    """The one form emails are stored and compared in: NFC, trimmed, case-folded.

    The domain is taken as email-validator writes it (lower case, IDNA-mapped: `BÜCHER.de`
    and `xn--bcher-kva.de` are both `bücher.de`), not case-folded, which would change it:
    `straße.de` is not `strasse.de`. Text that is no valid address (a login may send
    anything) is folded whole.
    """
    text = unicodedata.normalize("NFC", text).strip()
    try:
        _, address = validate_email(text)
    except PydanticCustomError:
        return _fold(text)
    local, _, domain = address.rpartition("@")
    return f"{_fold(local)}@{domain}"


EMAIL_MAX_LENGTH = 200


def _stored_email(value: object, handler: ValidatorFunctionWrapHandler) -> str:
    valid: str = handler(value)
    # Of the text as sent, exactly as a login with that text computes it.
    stored = canonical_email(value if isinstance(value, str) else valid)
    # Case folding may lengthen it (ß is ss).
    if len(stored) > EMAIL_MAX_LENGTH:
        raise ValueError(f"must be at most {EMAIL_MAX_LENGTH} characters once case-folded")
    return stored


@dataclass(frozen=True)
class _Pattern:
    """Tells the API docs, as a `pattern`, what the validators of a type check."""

    # A function when the pattern is costly to compute: only the docs need it.
    regex: str | Callable[[], str]
    # Lengths the pattern states itself (as they are counted after trimming).
    counts_length: bool = False
    # What else the validators check, that no pattern can state.
    description: str | None = None

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.regex if isinstance(self.regex, str) else self.regex()
        if self.description is not None:
            schema["description"] = self.description
        if self.counts_length:
            schema.pop("minLength", None)
            schema.pop("maxLength", None)
        return schema


# No control characters (Unicode category Cc): C0, DEL and C1.
_TEXT = r"[^\x00-\x1f\x7f-\x9f]"
_PRINTABLE = _Pattern(rf"^{_TEXT}*$")


def _escape(code: int) -> str:
    # Escapes that Python's `re` and the Rust regex engine of Schemathesis' validator both read.
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _ranges(codes: Iterable[int]) -> str:
    """The inside of a regex character class holding these code points (ascending)."""
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(
        _escape(low) if low == high else f"{_escape(low)}-{_escape(high)}" for low, high in ranges
    )


@functools.cache
def _name_regex() -> str:
    """What `Name` accepts, as a pattern: its Unicode classes spelt out as ranges.

    Computed on first use (0.5 s): the classes run to 1,000 ranges and 16 KB.
    """
    codes = range(sys.maxunicode + 1)
    categories = [unicodedata.category(chr(code)) for code in codes]
    # What pydantic trims: Unicode's White_Space, `isspace()` but for U+001C-001F.
    trimmed = _ranges(c for c in codes if chr(c).isspace() and not 0x1C <= c <= 0x1F)
    allowed = _ranges(c for c in codes if categories[c] not in _HIDDEN)
    # Among allowed characters, one that is no space, mark or blank is a visible one.
    unseen = _ranges(
        c
        for c in codes
        if chr(c).isspace() or categories[c][0] == "M" or chr(c) in _BLANKS or chr(c) == _ZWJ
    )
    emoji = f"[{_ranges(c for low, high in _PICTOGRAPHS for c in range(low, high + 1))}]"
    # One character, as the lookarounds take none: the count below is the name's length.
    joiner = rf"(?:(?<={emoji})|(?<={emoji}\ufe0f))\u200d(?={emoji})"
    # Not all unseen; 1 to 100 characters once trimmed; joiners only between emoji. The
    # lookarounds around the count are negative: a fuzzer drawing from the pattern draws
    # nothing for them, and seldom draws what they refuse.
    return (
        rf"^(?![{unseen}]*$)[{trimmed}]*(?![{trimmed}])"
        rf"(?:[{allowed}]|{joiner}){{1,100}}(?<![{trimmed}])[{trimmed}]*$"
    )


@functools.cache
def _password_regex() -> str:
    blank = _ranges(
        c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in BLANK_CATEGORIES
    )
    return rf"^(?![{blank}]*$)[^\x00]*$"


_NAME = _Pattern(_name_regex, counts_length=True)
_PASSWORD = _Pattern(
    _password_regex,
    description=(
        f"{PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters, also once normalised"
        " (NFKC); not only spaces and invisible characters; not one of the most commonly"
        " used passwords; not containing the account's email."
    ),
)
_NO_NUL = _Pattern(r"^[^\x00]*$")
# Not at a special-use domain (`.test`, `.localhost`...): those can have no mailbox.
_SPECIAL_USE = "|".join(
    "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in name)
    for name in SPECIAL_USE_DOMAIN_NAMES
)
_MAILABLE = _Pattern(rf"^(?![\s\S]*[.@]({_SPECIAL_USE})\s*$)")

# The range of an `integer` primary key: ids outside it cannot exist.
MAX_ID = 2**31 - 1
# The type of the validation error of an id out of that range: the API answers it with a
# 404 (no such row), as it would for an id in range that names none.
NO_SUCH_ID = "no_such_id"


def existing_id(not_found: str) -> AfterValidator:
    """Checks that an id is in the column's range, before any database work; `not_found`
    is the 404's detail otherwise."""

    def check(value: int) -> int:
        if not 1 <= value <= MAX_ID:
            raise PydanticCustomError(NO_SUCH_ID, not_found)
        return value

    return AfterValidator(check)


# Free text to search for: anything printable a name could hold.
SearchText = Annotated[
    str,
    # Empty or blank means no filter (the lists' query models say so).
    StringConstraints(max_length=100),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_no_control_characters),
    _PRINTABLE,
]

Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_shows_as_written),
    _NAME,
]

# A new password, in its normal form: the lengths hold both as sent (as a login checks
# it) and once normalised. Whether it holds the account's email is for the model to check.
Password = Annotated[
    str,
    StringConstraints(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH),
    BeforeValidator(_no_unpaired_surrogates),
    AfterValidator(_no_nul),
    AfterValidator(_acceptable_password),
    _PASSWORD,
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
    StringConstraints(strip_whitespace=True, max_length=EMAIL_MAX_LENGTH),
    BeforeValidator(_no_unpaired_surrogates),
    WrapValidator(_stored_email),
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
