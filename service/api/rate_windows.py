"""Where the rate limits count: in this process's memory, or in Redis (NEWSQA_REDIS_URL), where every worker and
machine shares one budget per caller. When Redis does not answer, NEWSQA_RATE_LIMIT_FAIL says whether a request
goes through unchecked (open: logged and counted) or is turned away (closed: 503)."""

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from newsqa.service.api.prometheus import RATE_LIMIT_UNCHECKED
from newsqa.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """`allowed`, else what to tell the caller: `status` 429 (over its limit) or 503 (limits unavailable)."""

    allowed: bool
    status: int = 200
    detail: str = ""
    retry_after: int = 0


ALLOWED = Verdict(True)


class RateWindows:
    def __init__(self, settings: Settings) -> None:
        self.rates = parse_many(settings.rate_limit)
        self.fail_open = settings.rate_limit_fail == "open"
        self.shared = settings.redis_url is not None
        if settings.redis_url is not None:
            # redis-py's asyncio client (limits[redis]); its timeouts bound a request's wait on a dead Redis
            storage = storage_from_string(
                "async+" + settings.redis_url.get_secret_value(), implementation="redispy", wrap_exceptions=True,
                key_prefix="newsqa", socket_timeout=settings.redis_timeout_s,
                socket_connect_timeout=settings.redis_timeout_s)
        else:
            storage = storage_from_string("async+memory://")
        self.windows = MovingWindowRateLimiter(storage)
        self._failing = False

    async def hit(self, caller: str) -> Verdict:
        """Counts one request of `caller` against every rate."""
        try:
            for rate in self.rates:
                if not await self.windows.hit(rate, caller):
                    return await self._over(rate, caller)
        except StorageError as exc:
            return self._unavailable(exc.storage_error)
        if self._failing:
            self._failing = False
            log.warning("Redis answers again: rate limits are checked")
        return ALLOWED

    async def _over(self, rate: RateLimitItem, caller: str) -> Verdict:
        reset = (await self.windows.get_window_stats(rate, caller)).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        return Verdict(False, 429, f"rate limit of {rate} exceeded; retry in {wait} s", wait)

    def _unavailable(self, error: Exception) -> Verdict:
        if not self._failing:  # once per outage, not once per request
            self._failing = True
            log.warning("Redis (NEWSQA_REDIS_URL) does not answer (%s: %s); requests are %s", type(error).__name__,
                        error, "let through unchecked" if self.fail_open else "refused with 503")
        if self.fail_open:
            RATE_LIMIT_UNCHECKED.inc()
            return ALLOWED
        return Verdict(False, 503, "rate limits cannot be checked now; try again shortly", 5)
