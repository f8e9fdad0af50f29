"""Rate limiters: the in-process GCRA bucket and the Redis-backed one shared by processes.

Time is not measured: the in-process tests drive a fake clock and record the sleeps the
limiter asks for; the Redis tests read the waits its Lua script hands out.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from clarion.config import Settings
from clarion.sending import ratelimit
from clarion.sending.ratelimit import RedisTokenBucket, TokenBucket, build_rate_limiter

REDIS_URL = "redis://127.0.0.1:6379/0"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.advance = True

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.advance:
            self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(ratelimit, "_monotonic", fake.monotonic)
    monkeypatch.setattr(ratelimit, "_sleep", fake.sleep)
    return fake


class TestTokenBucket:
    async def test_holds_the_rate_after_the_burst(self, clock: FakeClock) -> None:
        bucket = TokenBucket(100, burst=10)
        for _ in range(110):
            await bucket.acquire()
        # 10 go at once, the next 100 take one second at 100/s.
        assert sum(clock.sleeps) == pytest.approx(1.0)
        assert len(clock.sleeps) == 100

    async def test_a_large_request_waits_proportionally(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1000, burst=100)
        await bucket.acquire(500)
        assert sum(clock.sleeps) == pytest.approx(0.4)  # 500 at 1000/s, minus the burst
        await bucket.acquire(1000)
        assert sum(clock.sleeps) == pytest.approx(1.4)  # 1,500 in all, minus the burst

    async def test_concurrent_callers_share_the_rate(self, clock: FakeClock) -> None:
        bucket = TokenBucket(10, burst=1)
        clock.advance = False  # all five ask at the same instant
        await asyncio.gather(*(bucket.acquire() for _ in range(5)))
        assert sorted(clock.sleeps) == pytest.approx([0.1, 0.2, 0.3, 0.4])

    async def test_unlimited_never_waits(self, clock: FakeClock) -> None:
        bucket = TokenBucket(None)
        for _ in range(1000):
            await bucket.acquire(100)
        assert clock.sleeps == [] and bucket.current_rate is None

    def test_rejects_a_non_positive_rate(self) -> None:
        with pytest.raises(ValueError):
            TokenBucket(0)


class TestThrottle:
    async def test_halves_once_per_cooldown_and_floors(self, clock: FakeClock) -> None:
        bucket = TokenBucket(100, min_rate=10)
        bucket.on_throttle()
        bucket.on_throttle()  # same burst of 429s: counted once
        assert bucket.current_rate == 50
        for expected in (25, 12.5, 10, 10):
            clock.now += 1.5
            bucket.on_throttle()
            assert bucket.current_rate == expected

    async def test_throttled_rate_is_what_acquire_uses(self, clock: FakeClock) -> None:
        bucket = TokenBucket(100, burst=1)
        bucket.on_throttle()
        for _ in range(51):
            await bucket.acquire()
        assert sum(clock.sleeps) == pytest.approx(1.0)  # 50 messages at 50/s

    async def test_recovers_slowly_to_the_configured_rate(self, clock: FakeClock) -> None:
        bucket = TokenBucket(100)
        bucket.on_throttle()
        bucket.on_success()  # within the cooldown: no change
        assert bucket.current_rate == 50
        rates = []
        for _ in range(10):
            clock.now += 1.1
            bucket.on_success()
            rates.append(bucket.current_rate)
        assert rates[0] == pytest.approx(55)
        assert rates == sorted(rates) and rates[-1] == 100

    async def test_unlimited_limits_itself_when_throttled(self, clock: FakeClock) -> None:
        bucket = TokenBucket(None)
        for _ in range(400):  # 400 messages within the current second
            await bucket.acquire()
        bucket.on_throttle()
        assert bucket.current_rate == 200
        for _ in range(20):
            clock.now += 1.1
            bucket.on_success()
        assert bucket.current_rate is None  # back to unlimited


async def _redis_or_skip() -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL} ({exc}): Redis limiter tests skipped")
    finally:
        await client.aclose()


@pytest.fixture
async def redis_key() -> AsyncIterator[str]:
    await _redis_or_skip()
    key = f"test-{uuid.uuid4().hex}"
    yield key
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    await client.delete(f"clarion:rate:{key}", f"clarion:rate:{key}:current")
    await client.aclose()


Pair = Callable[..., tuple[RedisTokenBucket, RedisTokenBucket]]


@pytest.fixture
async def two_processes() -> AsyncIterator[Pair]:
    """Two limiters with their own connections, as two worker processes would have."""
    made: list[RedisTokenBucket] = []

    def make(key: str, rate: float, **kwargs: float) -> tuple[RedisTokenBucket, RedisTokenBucket]:
        a = build_rate_limiter(Settings(redis_url=REDIS_URL), key, rate)
        b = build_rate_limiter(Settings(redis_url=REDIS_URL), key, rate)
        assert isinstance(a, RedisTokenBucket) and isinstance(b, RedisTokenBucket)
        for limiter in (a, b):
            for name, value in kwargs.items():
                setattr(limiter, name, value)
            made.append(limiter)
        return a, b

    yield make
    for limiter in made:
        await limiter.aclose()


class Waits:
    """Record the sleeps a Redis limiter asks for, without sleeping."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.values: list[float] = []
        monkeypatch.setattr(ratelimit, "_sleep", self.sleep)

    async def sleep(self, seconds: float) -> None:
        self.values.append(seconds)


class TestRedisBucket:
    async def test_processes_share_one_bucket(
        self, redis_key: str, monkeypatch: pytest.MonkeyPatch, two_processes: Pair
    ) -> None:
        a, b = two_processes(redis_key, 100, _burst=1)
        waits = Waits(monkeypatch)
        await a.acquire(50)  # reserves half a second of the shared rate
        await b.acquire(50)  # so the other process waits for it
        assert len(waits.values) == 2
        assert waits.values[0] == pytest.approx(0.49, abs=0.02)
        assert waits.values[1] == pytest.approx(0.99, abs=0.05)

    async def test_a_throttle_halves_the_rate_for_every_process(
        self, redis_key: str, monkeypatch: pytest.MonkeyPatch, two_processes: Pair
    ) -> None:
        a, b = two_processes(redis_key, 100, refresh=0.0)
        assert await a.adjust(0.5) == 50
        assert await b.adjust(0.5) == 50  # within the cooldown: one halving per burst of 429s
        waits = Waits(monkeypatch)
        await b.acquire(51)  # b reads the shared rate: 51 messages at 50/s
        assert waits.values[0] == pytest.approx(1.0 - 5 / 50, abs=0.05)
        assert b.current_rate == 50

    async def test_on_throttle_and_recovery(self, redis_key: str, two_processes: Pair) -> None:
        a, b = two_processes(redis_key, 100, refresh=0.0, cooldown=0.0, min_rate=30)
        a.on_throttle()
        assert a.current_rate == 50  # locally at once
        await asyncio.gather(*a._background)
        a.on_throttle()
        await asyncio.gather(*a._background)
        assert a.current_rate == 30  # floored
        await b.acquire()
        assert b.current_rate == 30
        b.on_success()
        await asyncio.gather(*b._background)
        assert b.current_rate == pytest.approx(33)

    def test_without_a_rate_nothing_is_shared(self) -> None:
        limiter = build_rate_limiter(Settings(redis_url=REDIS_URL), "k", None)
        assert isinstance(limiter, TokenBucket)
        assert isinstance(build_rate_limiter(Settings(), "k", 10), TokenBucket)


class TestRedisOutage:
    async def test_falls_back_to_an_in_process_bucket(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import socket

        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        limiter = build_rate_limiter(Settings(redis_url=f"redis://127.0.0.1:{port}/0"), "k", 10)
        assert isinstance(limiter, RedisTokenBucket)
        waits = Waits(monkeypatch)
        for _ in range(3):
            await limiter.acquire()
        assert len(waits.values) == 2  # still limited: 10/s, burst 1
        assert await limiter.adjust(0.5) == 10  # nothing shared, nothing raised
        await limiter.aclose()
