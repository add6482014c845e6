"""What a new password must be (NIST SP 800-63B, 5.1.1.2), and the one form it is used in."""

from __future__ import annotations

import functools
import importlib.util
import unicodedata
from pathlib import Path

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128

# Spaces and line breaks (Z), controls (Cc) and format characters (Cf: zero-width spaces,
# the byte-order mark...): a password of only these looks empty, so it was a mistake.
BLANK_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})


def normalise_password(password: str) -> str:
    """The form a password is checked, hashed and verified in: NFKC.

    The same password typed on another system (accents composed or not, full-width
    letters, ligatures) is then the same password.
    """
    return unicodedata.normalize("NFKC", password)


def _fold(text: str) -> str:
    # Normalised again, as case folding may undo it ("ǰ" folds to "j" and a combining caron).
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


@functools.cache
def common_passwords() -> frozenset[str]:
    """zxcvbn's list of the 30,000 most commonly used passwords, case-folded.

    Only its 11,611 entries of 8 characters or more are kept: the shorter ones (all ASCII)
    could only match passwords refused for their length already.
    """
    # Importing `zxcvbn.frequency_lists` imports the whole package, which builds its own
    # dictionaries from all six of its lists: 70-110 ms, and 15 MiB kept by every worker.
    # Running the data module alone and keeping these entries: 20-40 ms, 1.3 MiB kept.
    package = importlib.util.find_spec("zxcvbn")
    if package is None or not package.submodule_search_locations:
        raise RuntimeError("the zxcvbn package is missing: it holds the common passwords")
    path = Path(next(iter(package.submodule_search_locations)), "frequency_lists.py")
    spec = importlib.util.spec_from_file_location("_zxcvbn_frequency_lists", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the common passwords from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    words: list[str] = module.FREQUENCY_LISTS["passwords"]
    return frozenset(_fold(word) for word in words if len(word) >= PASSWORD_MIN_LENGTH)


def password_problem(password: str, *, email: str | None) -> str | None:
    """Why `password` is not acceptable for the account of `email`, or None if it is.

    With `email=None` every rule but the one about the email is checked (a field's type
    cannot see the other fields).
    """
    normalised = normalise_password(password)
    if len(normalised) < PASSWORD_MIN_LENGTH:
        return f"must be at least {PASSWORD_MIN_LENGTH} characters"
    if len(normalised) > PASSWORD_MAX_LENGTH:
        return f"must be at most {PASSWORD_MAX_LENGTH} characters"
    if all(unicodedata.category(char) in BLANK_CATEGORIES for char in normalised):
        return "must contain something other than spaces and invisible characters"
    folded = _fold(normalised)
    if folded in common_passwords():
        return "is one of the most commonly used passwords: choose one that is harder to guess"
    return None if email is None else email_problem(password, email=email)


def email_problem(password: str, *, email: str) -> str | None:
    """Why `password` is not acceptable for the account of `email` once it passed every
    other rule (the `Password` type checks those), or None."""
    address = _fold(email.strip())
    if address and address in _fold(normalise_password(password)):
        return "must not contain your email address"
    return None
