"""Throttles: how many attempts an address or an account may make, with the `limits` library.

Every attempt spends its budget before it is tried (hit, then decide): the
counters are incremented atomically, in memory or in Redis, so that a burst of
concurrent attempts can never get more than the limit through, as it could if
each were tested first and counted after its outcome. An attempt that turns out
not to count (a login that succeeds) is given back.

When Redis cannot be reached, each worker counts in its own memory until Redis
answers again (tried again after `REDIS_RETRY_SECONDS`). That fails safe both ways:
logins and sign-ups go on working (refusing everyone would let a Redis outage lock
every user out), and they stay throttled, each worker holding an attacker to the
limits, so at worst workers x limits across the cluster, never unlimited.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import coredis
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from bazaar.config import Settings
from bazaar.errors import TooManyRequests

logger = logging.getLogger(__name__)

# How long a worker counts in its own memory after Redis failed, before trying it again.
REDIS_RETRY_SECONDS = 1.0
# A Redis that does not answer costs a request at most this long, not a hung login.
REDIS_TIMEOUT_SECONDS = 0.5


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
            self._pool = coredis.ConnectionPool.from_url(
                settings.redis_url,
                connect_timeout=REDIS_TIMEOUT_SECONDS,
                stream_timeout=REDIS_TIMEOUT_SECONDS,
            )
            storage = RedisStorage(
                f"async+{settings.redis_url}",
                key_prefix=key_prefix,
                connection_pool=self._pool,  # type: ignore[arg-type]
                wrap_exceptions=True,
            )
        else:
            storage = MemoryStorage()
        self.storage = storage
        self._limiter = FixedWindowRateLimiter(storage)
        # This worker's own counters, while Redis is away (see the module's docstring).
        self._local = MemoryStorage()
        self._local_limiter = FixedWindowRateLimiter(self._local)
        self._redis_retry_at = 0.0
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
        if self._shared():
            try:
                await self._spend(self._limiter, self.storage, charges)
                return
            except StorageError as error:
                self._redis_failed(error)
        await self._spend(self._local_limiter, self._local, charges)

    async def give_back(self, charges: Sequence[Charge]) -> None:
        """Return what `spend` took, for an attempt that does not count."""
        if self._shared():
            try:
                await self._give_back(self.storage, charges)
                return
            except StorageError as error:
                self._redis_failed(error)
        await self._give_back(self._local, charges)

    async def succeeded(self, login: Sequence[Charge]) -> None:
        """A login that succeeded: it counts against no budget, and the failures of its
        (email, address) pair are forgiven (the owner has shown they know the password)."""
        pair = login[0]
        if self._shared():
            try:
                await self._give_back(self.storage, login)
                await self._limiter.clear(pair.limit, pair.kind, pair.key)
                return
            except StorageError as error:
                self._redis_failed(error)
        await self._give_back(self._local, login)
        await self._local_limiter.clear(pair.limit, pair.kind, pair.key)

    def _shared(self) -> bool:
        """Whether to count in Redis (configured, and not failed a moment ago)."""
        return self._pool is not None and time.monotonic() >= self._redis_retry_at

    def _redis_failed(self, error: StorageError) -> None:
        logger.warning(
            "throttle: Redis unavailable (%s), counting in this worker for %g s",
            type(error.storage_error).__name__,
            REDIS_RETRY_SECONDS,
        )
        self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS

    @staticmethod
    async def _spend(
        limiter: FixedWindowRateLimiter, storage: Storage, charges: Sequence[Charge]
    ) -> None:
        taken: list[Charge] = []
        try:
            for charge in charges:
                taken.append(charge)
                if not await limiter.hit(charge.limit, charge.kind, charge.key):
                    stats = await limiter.get_window_stats(charge.limit, charge.kind, charge.key)
                    raise TooManyRequests(math.ceil(stats.reset_time - time.time()))
        except StorageError:
            raise  # nothing can be given back to a store that is away
        except BaseException:
            # Refused (or cut short): this attempt takes nothing, so that attempts beyond
            # the limit do not keep the counters above it for others.
            await Throttle._give_back(storage, taken)
            raise

    @staticmethod
    async def _give_back(storage: Storage, charges: Sequence[Charge]) -> None:
        for charge in charges:
            key = charge.limit.key_for(charge.kind, charge.key)
            if isinstance(storage, MemoryStorage):
                await storage.decr(key)
            else:
                # INCRBY is atomic; a negative amount is the decrement Redis storage lacks.
                await storage.incr(key, charge.limit.get_expiry(), amount=-1)

    def close(self) -> None:
        """Let go of the Redis connections, if any."""
        if self._pool is not None:
            self._pool.disconnect()
