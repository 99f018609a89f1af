"""Per-connection rate limits of the gateway: token buckets.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; each
inbound frame takes one. A frame that finds the bucket empty is refused (the consumer
answers it with an error reply); after ``close_after`` refusals in a row the connection is
closed with a reason. Only that connection is affected.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["FloodGuard", "TokenBucket"]


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second."""

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        """Take one token; ``False`` when the bucket is empty."""
        now = self._clock()
        tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True


class FloodGuard:
    """A bucket plus a count of refusals in a row.

    :meth:`check` returns ``"ok"``, ``"refuse"`` (answer with an error) or ``"close"``
    (``close_after`` refusals in a row: close the connection).
    """

    __slots__ = ("bucket", "close_after", "refused")

    def __init__(
        self,
        rate: float,
        burst: int,
        close_after: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bucket = TokenBucket(rate, burst, clock)
        self.close_after = close_after
        self.refused = 0

    def check(self) -> str:
        if self.bucket.take():
            self.refused = 0
            return "ok"
        self.refused += 1
        return "close" if self.refused >= self.close_after else "refuse"
