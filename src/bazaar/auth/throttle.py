"""Failed-login throttling per email and per client address, with the `limits` library."""

from __future__ import annotations

import hashlib
import math
import time

import coredis
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from bazaar.config import Settings
from bazaar.errors import TooManyRequests


def _digest(email: str) -> str:
    # Whatever was typed as the email, the counter's key stays short.
    return hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()


class LoginThrottle:
    """Counts failed logins; refuses further attempts once a budget is spent.

    Counters live in process memory, or in Redis when configured, so that every
    worker and host draws on one budget.
    """

    def __init__(self, settings: Settings, *, key_prefix: str = "bazaar-login") -> None:
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
        self._limiter = MovingWindowRateLimiter(storage)
        window = settings.login_window_minutes
        self._per_email = RateLimitItemPerMinute(settings.login_attempts_per_email, window)
        self._per_address = RateLimitItemPerMinute(settings.login_attempts_per_address, window)

    async def admit(self, *, email: str, address: str) -> None:
        """Let an attempt through, or raise TooManyRequests with the seconds to wait.

        The email's budget is spent up front (atomically), so that concurrent
        guesses at one account cannot overshoot it; `succeeded` gives it back.
        """
        if not await self._limiter.test(self._per_address, "address", address):
            raise TooManyRequests(await self._retry_after(self._per_address, "address", address))
        if not await self._limiter.hit(self._per_email, "email", _digest(email)):
            raise TooManyRequests(await self._retry_after(self._per_email, "email", _digest(email)))

    async def failed(self, *, address: str) -> None:
        await self._limiter.hit(self._per_address, "address", address)

    async def succeeded(self, *, email: str) -> None:
        await self._limiter.clear(self._per_email, "email", _digest(email))

    def close(self) -> None:
        """Let go of the Redis connections, if any."""
        if self._pool is not None:
            self._pool.disconnect()

    async def _retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        stats = await self._limiter.get_window_stats(item, *identifiers)
        return math.ceil(stats.reset_time - time.time())
