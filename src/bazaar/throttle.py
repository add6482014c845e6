"""Throttles: how many attempts an address or an account may make, with the `limits` library.

Every attempt spends its budget before it is tried (hit, then decide): the
counters are incremented atomically, in memory or in Redis, so that a burst of
concurrent attempts can never get more than the limit through, as it could if
each were tested first and counted after its outcome. An attempt that turns out
not to count (a login that succeeds) is given back.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import coredis
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter

from bazaar.config import Settings
from bazaar.errors import TooManyRequests


def _digest(text: str) -> str:
    # Whatever was typed as the email, the counter's key stays short and holds no address.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class Charge:
    """One unit of one budget: `limit` counted under `key` in the namespace `kind`."""

    limit: RateLimitItem
    kind: str
    key: str


class Throttle:
    """The application's budgets, kept in process memory, or in Redis when configured,
    so that every worker and host draws on one budget.

    Fixed windows, because they are the strategy whose counter can be given back:
    a moving window has no way to take one hit out again.
    """

    def __init__(self, settings: Settings, *, key_prefix: str = "bazaar") -> None:
        storage: Storage
        self._pool: coredis.ConnectionPool | None = None
        if settings.redis_url:
            self._pool = coredis.ConnectionPool.from_url(settings.redis_url)
            storage = RedisStorage(
                f"async+{settings.redis_url}",
                key_prefix=key_prefix,
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
        else:
            storage = MemoryStorage()
        self.storage = storage
        self._limiter = FixedWindowRateLimiter(storage)
        self._login_pair = parse(settings.limit_login_pair)
        self._login_address = parse(settings.limit_login_address)
        self._login_email = parse(settings.limit_login_email)
        self._signup = parse(settings.limit_signup)
        self._mail_email = parse(settings.limit_mail_email)
        self._mail_address = parse(settings.limit_mail_address)

    def login(self, *, email: str, address: str) -> tuple[Charge, ...]:
        """What a login attempt spends: the (email, address) pair's budget, the address's,
        and the email's from all addresses.

        The pair's is the small one: a stranger who fails at someone's email from
        their own address spends that pair's budget, not the owner's, who still
        gets in from theirs. The email's is large, against a botnet's many
        addresses; the address's, against one address trying many emails.
        """
        account = _digest(email)
        return (
            Charge(self._login_pair, "login-pair", f"{account}/{address}"),
            Charge(self._login_address, "login-address", address),
            Charge(self._login_email, "login-email", account),
        )

    def signup(self, *, address: str) -> tuple[Charge, ...]:
        return (Charge(self._signup, "signup", address),)

    def forgot_password(self, *, email: str, address: str) -> tuple[Charge, ...]:
        """What a forgot-password request spends: the email's budget of reset mails (whether
        or not it has an account, so that a 429 tells nothing), and the address's."""
        return (
            Charge(self._mail_email, "mail-email", _digest(email)),
            Charge(self._mail_address, "mail-address", address),
        )

    def resend(self, *, user_id: int) -> tuple[Charge, ...]:
        """What a new verification mail spends: its user's budget."""
        return (Charge(self._mail_email, "mail-user", str(user_id)),)

    async def spend(self, charges: Sequence[Charge]) -> None:
        """Take one from each budget, or none: TooManyRequests, with the seconds until the
        spent budget refills, when any of them is spent already."""
        taken: list[Charge] = []
        try:
            for charge in charges:
                taken.append(charge)
                if not await self._limiter.hit(charge.limit, charge.kind, charge.key):
                    stats = await self._limiter.get_window_stats(
                        charge.limit, charge.kind, charge.key
                    )
                    raise TooManyRequests(math.ceil(stats.reset_time - time.time()))
        except BaseException:
            # Refused (or cut short): this attempt takes nothing, so that attempts beyond
            # the limit do not keep the counters above it for others.
            await self.give_back(taken)
            raise

    async def give_back(self, charges: Sequence[Charge]) -> None:
        """Return what `spend` took, for an attempt that does not count."""
        for charge in charges:
            key = charge.limit.key_for(charge.kind, charge.key)
            if isinstance(self.storage, MemoryStorage):
                await self.storage.decr(key)
            else:
                # INCRBY is atomic; a negative amount is the decrement Redis storage lacks.
                await self.storage.incr(key, charge.limit.get_expiry(), amount=-1)

    async def succeeded(self, login: Sequence[Charge]) -> None:
        """A login that succeeded: it counts against no budget, and the failures of its
        (email, address) pair are forgiven (the owner has shown they know the password)."""
        await self.give_back(login)
        pair = login[0]
        await self._limiter.clear(pair.limit, pair.kind, pair.key)

    def close(self) -> None:
        """Let go of the Redis connections, if any."""
        if self._pool is not None:
            self._pool.disconnect()
