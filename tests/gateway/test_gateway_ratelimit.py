"""Token buckets and the flood guard, on an injected clock."""

from __future__ import annotations

from supa_realtime.gateway.ratelimit import FloodGuard, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_burst_and_refill() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now = 0.5  # one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    clock.now = 100.0  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_flood_guard_refuses_then_closes_and_forgives() -> None:
    clock = Clock()
    guard = FloodGuard(rate=1.0, burst=1, close_after=3, clock=clock)
    assert guard.check() == "ok"
    assert guard.check() == "refuse"
    assert guard.check() == "refuse"
    clock.now = 1.0
    assert guard.check() == "ok"  # a frame within the rate resets the count
    assert [guard.check() for _ in range(3)] == ["refuse", "refuse", "close"]
