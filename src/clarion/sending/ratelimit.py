"""Send-rate limiting per provider sender.

`build_rate_limiter(settings, key, rate)` answers an in-process token bucket, or, when
`CLARION_REDIS_URL` is set, a bucket kept in Redis and updated by one atomic Lua script, so
that every process sending through the same `key` shares the rate. `rate=None` means no
configured limit.

Both are GCRA buckets ("virtual scheduling"): `acquire(n)` reserves the next `n` slots and
sleeps until the first one, so concurrent callers queue in order with no polling, and a
request larger than the burst simply waits longer.

A throttle answer from the provider calls `on_throttle()`: the rate halves (at most once per
`cooldown` seconds, so a burst of 429s from one window counts once), never below
`min_rate`. `on_success()` lets it recover by 10% per cooldown period toward the configured
rate. An unlimited limiter that gets throttled starts limiting at half the rate it was
observed to send at, and goes back to unlimited once it has recovered to that rate.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from redis.exceptions import RedisError

from clarion.config import Settings

log = logging.getLogger(__name__)

DEFAULT_MIN_RATE = 1.0
RECOVERY = 1.10
COOLDOWN = 1.0

# Module-level so that tests can drive a fake clock without patching asyncio or time.
_monotonic = time.monotonic
_sleep = asyncio.sleep


class RateLimiter(Protocol):
    async def acquire(self, n: int = 1) -> None:
        """Wait until `n` more messages may be sent."""

    def on_throttle(self) -> None:
        """The provider said slow down: halve the rate (floored at a minimum)."""

    def on_success(self) -> None:
        """A batch went through unthrottled: recover slowly toward the configured rate."""

    @property
    def current_rate(self) -> float | None:
        """Messages per second allowed now (None: unlimited)."""


class _Observed:
    """The send rate over the last couple of seconds (for throttling an unlimited limiter)."""

    def __init__(self) -> None:
        self._window = int(_monotonic())
        self._count = 0
        self._previous = 0

    def add(self, n: int) -> None:
        now = int(_monotonic())
        if now != self._window:
            self._previous = self._count if now == self._window + 1 else 0
            self._window, self._count = now, 0
        self._count += n

    def rate(self) -> float:
        return float(max(self._previous, self._count))


class _Adaptive:
    """The throttle/recovery policy shared by both buckets."""

    def __init__(self, rate: float | None, min_rate: float, cooldown: float) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for no limit)")
        self.configured = rate
        self.min_rate = min_rate
        self.cooldown = cooldown
        self.rate = rate  # current; None while unlimited
        self.ceiling = rate  # what recovery climbs back to
        self._last_change = 0.0
        self.observed = _Observed()

    def throttle(self) -> bool:
        now = _monotonic()
        if now - self._last_change < self.cooldown:
            return False
        self._last_change = now
        if self.rate is None:  # unlimited until now: start from what we were sending at
            self.ceiling = max(self.observed.rate(), self.min_rate * 2)
            self.rate = self.ceiling
        self.rate = max(self.min_rate, self.rate / 2)
        return True

    def success(self) -> bool:
        if self.rate is None or self.ceiling is None or self.rate >= self.ceiling:
            return False
        now = _monotonic()
        if now - self._last_change < self.cooldown:
            return False
        self._last_change = now
        self.rate = min(self.ceiling, self.rate * RECOVERY)
        if self.configured is None and self.rate >= self.ceiling:
            self.rate = self.ceiling = None  # fully recovered: unlimited again
        return True


class TokenBucket:
    """In-process GCRA bucket. `burst` is how many messages may go at once after idling
    (default: a tenth of a second's worth, at least one)."""

    def __init__(
        self,
        rate: float | None,
        *,
        burst: float | None = None,
        min_rate: float = DEFAULT_MIN_RATE,
        cooldown: float = COOLDOWN,
    ) -> None:
        self.policy = _Adaptive(rate, min_rate, cooldown)
        self._burst = burst
        self._tat = 0.0  # theoretical arrival time of the next slot

    @property
    def current_rate(self) -> float | None:
        return self.policy.rate

    def _burst_seconds(self, rate: float) -> float:
        burst = self._burst if self._burst is not None else max(1.0, rate / 10)
        return burst / rate

    async def acquire(self, n: int = 1) -> None:
        self.policy.observed.add(n)
        rate = self.policy.rate
        if rate is None:
            return
        now = _monotonic()
        tat = max(self._tat, now)
        self._tat = tat + n / rate
        wait = self._tat - now - self._burst_seconds(rate)
        if wait > 1e-6:  # float noise is not a wait
            await _sleep(wait)

    def on_throttle(self) -> None:
        self.policy.throttle()

    def on_success(self) -> None:
        self.policy.success()


# KEYS[1] = the bucket's TAT (microseconds, Redis clock); ARGV = emission interval of one
# message (µs), burst tolerance (µs), n. Reserves n slots and answers how long to wait (µs).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval * n
local ttl = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl)
local wait = new_tat - now - burst
if wait < 0 then wait = 0 end
return wait
"""

# KEYS[1] = the shared current rate; ARGV = configured rate, min rate, factor, cooldown (ms).
# One atomic read-modify-write so concurrent processes halve (or recover) once per cooldown.
_ADJUST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local configured = tonumber(ARGV[1])
local min_rate = tonumber(ARGV[2])
local factor = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'rate', 'at')
local rate = tonumber(state[1]) or configured
local at = tonumber(state[2]) or 0
if now - at < cooldown then return tostring(rate) end
local new_rate = rate * factor
if new_rate < min_rate then new_rate = min_rate end
if new_rate > configured then new_rate = configured end
if new_rate == rate then return tostring(rate) end
redis.call('HSET', KEYS[1], 'rate', tostring(new_rate), 'at', now)
redis.call('PEXPIRE', KEYS[1], 3600000)
return tostring(new_rate)
"""


class RedisTokenBucket:
    """A GCRA bucket in Redis shared by every process using the same key. The current
    (possibly throttled) rate is shared too, and re-read at most every `refresh` seconds.

    If Redis cannot be reached, sending does not stop: each process falls back to its own
    in-process bucket at the configured rate (so the cluster-wide rate is exceeded by the
    number of processes until Redis answers again) and logs a warning.
    """

    def __init__(
        self,
        client: Any,
        key: str,
        rate: float,
        *,
        burst: float | None = None,
        min_rate: float = DEFAULT_MIN_RATE,
        cooldown: float = COOLDOWN,
        refresh: float = 1.0,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.client = client
        self.key = f"clarion:rate:{key}"
        self.rate_key = f"{self.key}:current"
        self.configured = rate
        self.min_rate = min_rate
        self.cooldown = cooldown
        self.refresh = refresh
        self._burst = burst
        self._rate = rate
        self._read_at = 0.0
        self._last_success = 0.0
        self._acquire = client.register_script(_ACQUIRE)
        self._adjust = client.register_script(_ADJUST)
        self._background: set[asyncio.Task[Any]] = set()
        self._local = TokenBucket(rate, burst=burst, min_rate=min_rate, cooldown=cooldown)
        self._warned_at = -1e9

    @property
    def current_rate(self) -> float:
        return self._rate

    async def aclose(self) -> None:
        """Close this limiter's Redis connections (the engine may simply let them go)."""
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.client.aclose()

    def _redis_failed(self, exc: Exception) -> None:
        now = _monotonic()
        if now - self._warned_at > 10:
            self._warned_at = now
            log.warning("rate limiter: Redis unavailable (%s); limiting in process", exc)

    async def _current(self) -> float:
        now = _monotonic()
        if now - self._read_at >= self.refresh:
            self._read_at = now
            value = await self.client.hget(self.rate_key, "rate")
            self._rate = float(value) if value is not None else self.configured
        return self._rate

    async def acquire(self, n: int = 1) -> None:
        try:
            rate = await self._current()
            burst = self._burst if self._burst is not None else max(1.0, rate / 10)
            interval = 1_000_000 / rate
            wait_us = await self._acquire(keys=[self.key], args=[interval, burst * interval, n])
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
            await self._local.acquire(n)
            return
        if int(wait_us) > 0:
            await _sleep(int(wait_us) / 1_000_000)

    async def adjust(self, factor: float) -> float:
        try:
            value = await self._adjust(
                keys=[self.rate_key],
                args=[self.configured, self.min_rate, factor, int(self.cooldown * 1000)],
            )
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
            return self._rate
        self._rate = float(value)
        self._read_at = _monotonic()
        return self._rate

    def _spawn(self, factor: float) -> None:
        task = asyncio.get_running_loop().create_task(self.adjust(factor))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def on_throttle(self) -> None:
        self._rate = max(self.min_rate, self._rate / 2)  # locally at once, shared below
        self._local.on_throttle()
        self._spawn(0.5)

    def on_success(self) -> None:
        self._local.on_success()
        now = _monotonic()
        if self._rate >= self.configured or now - self._last_success < self.cooldown:
            return
        self._last_success = now
        self._spawn(RECOVERY)


class LimiterPacer:
    """A provider's view (`providers.base.Pacer`) of the engine's limiters: `limiter_for`
    answers the limiter of one sender of that provider."""

    def __init__(self, limiter_for: Callable[[str | None], RateLimiter]) -> None:
        self._limiter_for = limiter_for

    async def acquire(self, sender: str | None, n: int = 1) -> None:
        await self._limiter_for(sender).acquire(n)

    def on_throttle(self, sender: str | None) -> None:
        self._limiter_for(sender).on_throttle()


def _redis_client(url: str) -> Any:
    """A client (a small lazy connection pool) per limiter: asyncio connections belong to
    the event loop that opened them, so limiters do not share a process-wide pool."""
    from redis.asyncio import Redis

    return Redis.from_url(url, max_connections=16)


def build_rate_limiter(settings: Settings, key: str, rate: float | None) -> RateLimiter:
    """The limiter for one provider sender (`key`, e.g. "simulator:sms"); shared through
    Redis when `CLARION_REDIS_URL` is set and a rate is configured. Without a configured
    rate there is nothing to share: the in-process limiter only reacts to throttling."""
    if rate is not None and settings.redis_url:
        return RedisTokenBucket(_redis_client(settings.redis_url), key, rate)
    return TokenBucket(rate)
