"""Password rules (NIST SP 800-63B) and how passwords are hashed and verified."""

from __future__ import annotations

import argon2
import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from bazaar.password_rules import common_passwords, password_problem
from bazaar.security import Passwords
from tests.factories import Api

COMMON = "is one of the most commonly used passwords: choose one that is harder to guess"
BLANK = "must contain something other than spaces and invisible characters"
HAS_EMAIL = "must not contain your email address"


def test_the_list_is_zxcvbns_passwords_of_eight_characters_or_more() -> None:
    assert len(common_passwords()) == 11_611
    assert {"password", "iloveyou", "12345678", "trustno1"} <= common_passwords()


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("password", COMMON),
        ("PassWord", COMMON),
        ("ILOVEYOU", COMMON),
        # Full-width letters are the same letters once normalised (NFKC).
        ("\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44", COMMON),
        (" " * 8, BLANK),
        ("\u200b" * 8, BLANK),
        ("\u3000\u00a0\ufeff\u2060\u200b\u200c\u200d\t", BLANK),
        # Eight code points as sent, four characters once the accents are composed.
        ("e\u0301" * 4, "must be at least 8 characters"),
        # 128 as sent, 256 once the ligatures are spelt out.
        ("\ufb01" * 128, "must be at most 128 characters"),
        ("my-ada@example.com-password", HAS_EMAIL),
        ("MY-ADA@EXAMPLE.COM", HAS_EMAIL),
    ],
)
def test_unacceptable_passwords_say_why(password: str, problem: str) -> None:
    assert password_problem(password, email="ada@example.com") == problem


@pytest.mark.parametrize(
    "password",
    ["quiet-lantern-1", "correct horse battery", "ada@example", "pässwörd-🌸", " \u200bx" * 3],
)
def test_acceptable_passwords(password: str) -> None:
    assert password_problem(password, email="ada@example.com") is None


def test_without_an_email_every_other_rule_applies() -> None:
    assert password_problem("ada@example.com", email=None) is None
    assert password_problem("password", email=None) == COMMON


# Cheap parameters: what matters is how they compare with the stored hash's.
OURS = {"memory_kib": 1024, "time_cost": 2, "parallelism": 2}


def _stored(password: str, memory_kib: int, time_cost: int, parallelism: int) -> str:
    """A hash as an older or another deployment stored it, of the password exactly as given."""
    hasher = Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism)
    return PasswordHash((hasher,)).hash(password)


@pytest.mark.parametrize(
    "stronger",
    [
        {"memory_kib": 2048, "time_cost": 2, "parallelism": 2},
        {"memory_kib": 1024, "time_cost": 3, "parallelism": 2},
        {"memory_kib": 1024, "time_cost": 2, "parallelism": 4},
        {"memory_kib": 65536, "time_cost": 3, "parallelism": 4},
    ],
)
async def test_a_stronger_stored_hash_is_kept(stronger: dict[str, int]) -> None:
    stored = _stored("quiet-lantern-1", **stronger)
    assert await Passwords(**OURS).verify("quiet-lantern-1", stored) == (True, None)


@pytest.mark.parametrize(
    "weaker",
    [
        {"memory_kib": 512, "time_cost": 2, "parallelism": 2},
        {"memory_kib": 1024, "time_cost": 1, "parallelism": 2},
        {"memory_kib": 1024, "time_cost": 2, "parallelism": 1},
        # Stronger in memory, weaker in time: still upgraded.
        {"memory_kib": 4096, "time_cost": 1, "parallelism": 2},
    ],
)
async def test_a_weaker_stored_hash_is_upgraded(weaker: dict[str, int]) -> None:
    passwords = Passwords(**OURS)
    matches, new = await passwords.verify("quiet-lantern-1", _stored("quiet-lantern-1", **weaker))
    assert matches
    assert new is not None
    parameters = argon2.extract_parameters(new)
    assert (parameters.memory_cost, parameters.time_cost, parameters.parallelism) == (1024, 2, 2)
    assert parameters.type is argon2.Type.ID
    assert await passwords.verify("quiet-lantern-1", new) == (True, None)


async def test_an_argon2i_hash_is_upgraded_to_argon2id() -> None:
    stored = argon2.PasswordHasher(
        time_cost=2, memory_cost=1024, parallelism=2, type=argon2.Type.I
    ).hash("quiet-lantern-1")
    matches, new = await Passwords(**OURS).verify("quiet-lantern-1", stored)
    assert matches
    assert new is not None
    assert new.startswith("$argon2id$")


async def test_a_password_verifies_however_its_accents_are_encoded() -> None:
    passwords = Passwords(**OURS)
    hashed = await passwords.hash("cr\u00e8me-br\u00fbl\u00e9e")  # composed (NFC)
    assert await passwords.verify("cre\u0300me-bru\u0302le\u0301e", hashed) == (True, None)
    assert await passwords.verify("creme-brulee", hashed) == (False, None)


async def test_a_hash_made_before_normalisation_still_verifies_and_is_rehashed() -> None:
    passwords = Passwords(**OURS)
    typed = "cre\u0300me-bru\u0302le\u0301e"  # decomposed, hashed as it was typed
    matches, new = await passwords.verify(typed, _stored(typed, **OURS))
    assert matches
    assert new is not None
    assert await passwords.verify("cr\u00e8me-br\u00fbl\u00e9e", new) == (True, None)


async def test_an_unknown_email_never_verifies() -> None:
    assert await Passwords(**OURS).verify("quiet-lantern-1", None) == (False, None)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("password", COMMON),
        ("\u200b" * 8, BLANK),
        ("Ada@Example.com-2024", HAS_EMAIL),
    ],
)
async def test_a_sign_up_with_an_unacceptable_password_is_422(
    api: Api, password: str, message: str
) -> None:
    response = await api.client.post(
        "/users/", json={"name": "Ada", "email": "ada@example.com", "password": password}
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "password"]
    assert error["msg"] == f"Value error, {message}"
    assert "input" not in error
    assert await api.count("users") == 0


async def test_a_password_signed_up_composed_logs_in_decomposed(api: Api) -> None:
    await api.sign_up(email="ada@example.com", password="cr\u00e8me-br\u00fbl\u00e9e")
    response = await api.login("ada@example.com", "cre\u0300me-bru\u0302le\u0301e")
    assert response.status_code == 200
