"""The shared field types: names that show as written, emails in one form."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from bazaar.fields import Email, Name, Password, canonical_email
from bazaar.password_rules import password_problem

NAME = TypeAdapter(Name)
EMAIL = TypeAdapter(Email)

GOOD_NAMES = {
    "latin": ("  Ada Lovelace ", "Ada Lovelace"),
    "accents": ("Zoë Gómez", "Zoë Gómez"),
    "arabic": ("زهرة", "زهرة"),
    "han": ("花子", "花子"),
    "technologist": ("👩\u200d💻 Ada", "👩\u200d💻 Ada"),
    "family": ("👨\u200d👩\u200d👧\u200d👦", "👨\u200d👩\u200d👧\u200d👦"),
    "skin tone and gender": ("🏃🏽\u200d♀\ufe0f", "🏃🏽\u200d♀\ufe0f"),
    "emoji style then joiner": ("👁\ufe0f\u200d🗨\ufe0f", "👁\ufe0f\u200d🗨\ufe0f"),
    "heart on fire": ("❤\ufe0f\u200d🔥", "❤\ufe0f\u200d🔥"),
    "rainbow flag": ("🏳\ufe0f\u200d🌈", "🏳\ufe0f\u200d🌈"),
    "a mark on a letter": ("e\u0301", "e\u0301"),
    "one symbol": ("★", "★"),
}


@pytest.mark.parametrize(("sent", "kept"), GOOD_NAMES.values(), ids=GOOD_NAMES.keys())
def test_good_names_are_kept_trimmed(sent: str, kept: str) -> None:
    assert NAME.validate_python(sent) == kept


HIDDEN = "must not contain control, formatting, private-use or unassigned characters"
NOTHING_VISIBLE = "must contain a letter, digit, punctuation mark or symbol"
BAD_NAMES = {
    "control (bell)": ("Ada\x07", f"{HIDDEN} (it holds U+0007)"),
    "control (C1 next line)": ("Ada\x85Lovelace", f"{HIDDEN} (it holds U+0085)"),
    "right-to-left override": ("\u202eevil", f"{HIDDEN} (it holds U+202E)"),
    "left-to-right embedding": ("a\u202ab", f"{HIDDEN} (it holds U+202A)"),
    "first strong isolate": ("\u2068Ada\u2069", f"{HIDDEN} (it holds U+2068)"),
    "zero-width space": ("Ada\u200bLovelace", f"{HIDDEN} (it holds U+200B)"),
    "zero-width non-joiner": ("Ada\u200c", f"{HIDDEN} (it holds U+200C)"),
    "byte-order mark": ("\ufeffAda", f"{HIDDEN} (it holds U+FEFF)"),
    "soft hyphen": ("Ad\u00ada", f"{HIDDEN} (it holds U+00AD)"),
    "tag character": ("Ada\U000e0041", f"{HIDDEN} (it holds U+E0041)"),
    "joiner between letters": ("ad\u200dmin", f"{HIDDEN} (it holds U+200D)"),
    "joiner after an emoji only": ("👩\u200d", f"{HIDDEN} (it holds U+200D)"),
    "joiner before an emoji only": ("a\u200d💻", f"{HIDDEN} (it holds U+200D)"),
    "unassigned": ("Ada\u0378", f"{HIDDEN} (it holds U+0378)"),
    "noncharacter": ("Ada\uffff", f"{HIDDEN} (it holds U+FFFF)"),
    "private use": ("Ada\ue000", f"{HIDDEN} (it holds U+E000)"),
    "private use, plane 15": ("\U000f0000", f"{HIDDEN} (it holds U+F0000)"),
    "only combining marks": ("\u0301\u0308", NOTHING_VISIBLE),
    "only a Hangul filler": ("\u3164", NOTHING_VISIBLE),
    "Hangul fillers and spaces": (" \u3164\u3000\u3164 ", NOTHING_VISIBLE),
    "only a blank Braille pattern": ("\u2800", NOTHING_VISIBLE),
}


@pytest.mark.parametrize(("sent", "message"), BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_bad_names_are_refused_saying_why(sent: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NAME.validate_python(sent)
    assert [error["msg"] for error in caught.value.errors()] == [f"Value error, {message}"]


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValidationError, match="no unpaired surrogates"):
        NAME.validate_python("Ada\ud800")


BLANK = "must contain something other than spaces and invisible characters"
# Characters from every class the rules tell apart, and random ones.
_TRICKY = "aZ5.★ \t\n\x85\u3000\u2028\x07\x1c\u200b\u200d\ufe0f\u202e\u0301\u3164\u2800"
_TRICKY += "\ue000\u0378👩💻♀🏽"
_CHARACTERS = st.one_of(st.sampled_from(_TRICKY), st.characters(exclude_categories=["Cs"]))


@settings(max_examples=400, deadline=None)
@given(st.text(_CHARACTERS, max_size=6) | st.text(_CHARACTERS, min_size=98, max_size=103))
def test_the_documented_name_pattern_accepts_exactly_what_the_validators_do(text: str) -> None:
    schema = NAME.json_schema()
    documented = re.search(schema["pattern"], text) is not None
    try:
        NAME.validate_python(text)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert documented == accepted


@settings(max_examples=200, deadline=None)
@given(st.text(_CHARACTERS | st.sampled_from("\x00\ufeff\u2060"), min_size=8, max_size=12))
def test_the_documented_password_pattern_refuses_exactly_the_blank_ones(text: str) -> None:
    documented = re.search(TypeAdapter(Password).json_schema()["pattern"], text) is not None
    refused = "\x00" in text or password_problem(text, email=None) == BLANK
    assert documented == (not refused)


EMAILS = {
    "decomposed accent": ("jose\u0301@example.com", "jos\u00e9@example.com"),
    "composed accent": ("jos\u00e9@example.com", "jos\u00e9@example.com"),
    "upper case": (" JOS\u00c9@EXAMPLE.COM ", "jos\u00e9@example.com"),
    "sharp s": ("Strau\u00df@example.com", "strauss@example.com"),
    "capital sharp s": ("STRAU\u1e9e@example.com", "strauss@example.com"),
    "Turkish dotted I": ("\u0130nci@example.com", "i\u0307nci@example.com"),
    "Turkish dotless i": ("\u0131nci@example.com", "\u0131nci@example.com"),
    "punycode domain": ("Ada@XN--BCHER-KVA.example", "ada@b\u00fccher.example"),
    "unicode domain": ("ada@B\u00dcCHER.example", "ada@b\u00fccher.example"),
    # A domain keeps its ß: straße.de and strasse.de are two domains.
    "sharp s in the domain": ("ada@stra\u00dfe.de", "ada@stra\u00dfe.de"),
}


@pytest.mark.parametrize(("sent", "stored"), EMAILS.values(), ids=EMAILS.keys())
def test_an_email_is_stored_in_the_form_a_login_computes(sent: str, stored: str) -> None:
    assert EMAIL.validate_python(sent) == stored
    assert canonical_email(sent) == stored


def test_text_that_is_no_email_is_still_folded() -> None:
    assert canonical_email(" Jose\u0301 Strau\u00df ") == "jos\u00e9 strauss"


def test_an_email_too_long_once_folded_is_refused() -> None:
    local = "\u00df" + "a" * 42
    domain = ".".join(["b" * 50, "c" * 50, "d" * 50]) + ".com"
    sent = f"{local}@{domain}"
    assert len(sent) == 200
    with pytest.raises(ValidationError, match="at most 200 characters once case-folded"):
        EMAIL.validate_python(sent)
