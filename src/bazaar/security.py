"""Password hashing (argon2id, off the event loop), signed access tokens (JWT, HS256), and
the random secrets of sessions and links."""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TypeVar

import anyio.to_thread
import argon2
import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from bazaar.errors import Unavailable
from bazaar.fields import MAX_ID
from bazaar.password_rules import normalise_password

# OWASP's first recommended argon2id configuration: 19 MiB, 2 iterations, 1 lane.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

ALGORITHM = "HS256"

T = TypeVar("T")

# How long a hash may wait for a free core before the request gets a 503: a few dozen
# hashes' time (one takes 20-40 ms here), so a burst is served, a flood turned away.
HASH_MAX_WAIT_SECONDS = 3.0
BUSY_HASHING = "Too many passwords are being checked right now, try again shortly"


class Passwords:
    """Hashes and verifies in worker threads, so other requests keep flowing meanwhile.

    Hashes run on all CPUs but one at most (`at_once` by default): more would take CPU
    time from the event loop thread, stalling every other request, and finish no sooner.
    """

    def __init__(
        self,
        *,
        memory_kib: int = ARGON2_MEMORY_KIB,
        time_cost: int = ARGON2_TIME_COST,
        parallelism: int = ARGON2_PARALLELISM,
        max_wait: float = HASH_MAX_WAIT_SECONDS,
        at_once: int | None = None,
    ) -> None:
        self._limiter = anyio.CapacityLimiter(at_once or max(1, (os.cpu_count() or 1) - 1))
        self.max_wait = max_wait
        self._parameters = (memory_kib, time_cost, parallelism)
        self._hash = PasswordHash(
            (Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism),)
        )

    @cached_property
    def _dummy(self) -> str:
        return self._hash.hash("not a real password: evens out the time of unknown emails")

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        # A burst of sign-ups or logins queues here, holding no connection; past a bounded
        # wait it is told to come back, rather than pile up for ever.
        with anyio.move_on_after(self.max_wait) as waited:
            await self._limiter.acquire()
        if waited.cancelled_caught:
            raise Unavailable(BUSY_HASHING, headers={"Retry-After": "1"})
        try:
            return await anyio.to_thread.run_sync(function, *args)
        finally:
            self._limiter.release()

    async def hash(self, password: str) -> str:
        """The hash of the password's normal form (NFKC), the form `verify` checks."""
        return await self._run(self._hash.hash, normalise_password(password))

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """(matches, new hash when the stored one is weaker than ours in some parameter).

        With no stored hash (unknown email) it verifies against a dummy, so that
        an unknown email takes as long as a wrong password.
        """
        return await self._run(self._verify, password, hashed)

    def _verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        stored = self._dummy if hashed is None else hashed
        normalised = normalise_password(password)
        matches = self._hash.verify(normalised, stored)
        upgrade = matches and self._weaker(stored)
        if not matches and normalised != password:
            # Hashes made before passwords were normalised hold the text as it was typed.
            matches = upgrade = self._hash.verify(password, stored)
        if hashed is None or not matches:
            return False, None
        return True, self._hash.hash(normalised) if upgrade else None

    def _weaker(self, hashed: str) -> bool:
        """Whether `hashed` is cheaper to crack than ours: a stronger one is kept as it is."""
        stored = argon2.extract_parameters(hashed)
        memory_kib, time_cost, parallelism = self._parameters
        return (
            stored.type is not argon2.Type.ID
            or stored.version < argon2.low_level.ARGON2_VERSION
            or stored.memory_cost < memory_kib
            or stored.time_cost < time_cost
            or stored.parallelism < parallelism
        )


# Tokens whose signature and claims each worker has checked already: one per active
# session is plenty, and the oldest unused go first.
VERIFIED_TOKENS = 4096
# The longest session id a token may name (ours are 22 characters).
SESSION_ID_LENGTH = 32


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    # The session the token was issued in: it works while that session is open.
    session_id: str
    # When the token stops working, in seconds since the epoch.
    expires: int


def _is_session_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= SESSION_ID_LENGTH
        and value.isascii()
        and all(c.isalnum() or c in "-_" for c in value)
    )


class Tokens:
    """Issues and reads HS256 access tokens, each naming its user and session."""

    def __init__(self, secret: str, lifetime: timedelta) -> None:
        self.secret = secret
        self.lifetime = lifetime
        # Checking a token's signature and claims is a third of the work of a signed-in
        # read. The outcome for a given token never changes except for its expiry, which
        # `read` checks every time; only genuine tokens are kept, so forgeries cannot
        # push them out. Whether its session is still open is not a property of the
        # token: the database says, on every request (see `bazaar.auth.queries`).
        self._verified = functools.lru_cache(maxsize=VERIFIED_TOKENS)(self._verify)

    def issue(self, user_id: int, session_id: str, *, now: datetime | None = None) -> str:
        issued = now or datetime.now(UTC)
        claims = {
            "sub": str(user_id),
            "sid": session_id,
            "iat": issued,
            "exp": issued + self.lifetime,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def read(self, token: str) -> TokenClaims | None:
        """The claims of a genuine, unexpired token, else None."""
        try:
            claims = self._verified(token)
        except (jwt.PyJWTError, ValueError):
            return None
        return claims if time.time() < claims.expires else None

    def _verify(self, token: str) -> TokenClaims:
        """The claims of a genuine token, unexpired now; raises otherwise (so that the
        cache keeps only genuine tokens)."""
        claims = jwt.decode(
            token,
            self.secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "sid", "exp", "iat"]},
        )
        subject, session_id, expires = claims["sub"], claims["sid"], claims["exp"]
        if (
            not isinstance(subject, str)
            or not (subject.isascii() and subject.isdigit())
            or not 1 <= int(subject) <= MAX_ID
            or not _is_session_id(session_id)
        ):
            raise ValueError("not a Bazaar access token")
        # As PyJWT reads it when it checks expiry.
        return TokenClaims(user_id=int(subject), session_id=session_id, expires=int(expires))


def new_secret_token() -> str:
    """256 random bits, URL-safe: a refresh token or a link's token."""
    return secrets.token_urlsafe(32)


def new_session_id() -> str:
    """128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


def token_hash(token: str) -> str:
    """What is stored of a secret token: its SHA-256, in hex.

    Looked up by equality in an index: a comparison's timing could only tell an attacker
    about hashes of tokens they already hold, never a token they lack.
    """
    return hashlib.sha256(token.encode()).hexdigest()
