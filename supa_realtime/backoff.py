"""Retry delays as functions of the try count.

A backoff policy is any ``Callable[[int], float | None]``: given the number of the try about
to be made (1 for the first retry), it returns how many seconds to wait first, or ``None``
to give up. Tests pass short ones; :class:`Backoff` is jittered exponential, and
:class:`Schedule` is a fixed list whose last value repeats (Phoenix's rejoin schedule).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["REJOIN_SCHEDULE", "Backoff", "BackoffPolicy", "Schedule"]

BackoffPolicy = Callable[[int], float | None]


@dataclass(frozen=True)
class Backoff:
    """Jittered exponential backoff.

    The delay before try ``n`` is ``min(max_delay, initial * factor ** (n - 1))``, scaled by
    a random factor in ``[1 - jitter, 1]`` so that many clients cut off at once do not
    come back at once.

    Args:
        initial: Delay before the first retry, in seconds.
        max_delay: Upper bound of any delay, in seconds.
        factor: Growth factor between tries.
        jitter: Fraction of the delay that is randomized, between 0 and 1.
        max_retries: Give up after this many tries; ``None`` retries forever.
        rand: Source of uniform numbers in ``[0, 1)``; injectable for tests.
    """

    initial: float = 1.0
    max_delay: float = 10.0
    factor: float = 2.0
    jitter: float = 0.25
    max_retries: int | None = None
    rand: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.initial < 0 or self.max_delay < 0:
            raise ValueError("backoff delays must not be negative")
        if self.factor < 1:
            raise ValueError("backoff factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be between 0 and 1")
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError("max_retries must be None or at least 0")

    def __call__(self, tries: int) -> float | None:
        if tries < 1:
            raise ValueError("tries counts from 1")
        if self.max_retries is not None and tries > self.max_retries:
            return None
        # Cap the exponent so huge try counts cannot overflow a float.
        exponent = min(tries - 1, 64)
        base = min(self.max_delay, self.initial * self.factor**exponent)
        return base * (1 - self.jitter * self.rand())


@dataclass(frozen=True)
class Schedule:
    """Fixed delays by try: ``delays[n - 1]``, the last one repeating.

    Args:
        delays: Seconds before tries 1, 2, 3, ...; must not be empty.
        max_retries: Give up after this many tries; ``None`` retries forever.
    """

    delays: Sequence[float]
    max_retries: int | None = None

    def __post_init__(self) -> None:
        if not self.delays or any(d < 0 for d in self.delays):
            raise ValueError("a schedule needs at least one delay and no negative delays")

    def __call__(self, tries: int) -> float | None:
        if tries < 1:
            raise ValueError("tries counts from 1")
        if self.max_retries is not None and tries > self.max_retries:
            return None
        return self.delays[min(tries, len(self.delays)) - 1]


#: phoenix.js ``rejoinAfterMs``: 1, 2, 5 s, then 10 s forever (PROTOCOL.md §7.4).
REJOIN_SCHEDULE = Schedule((1.0, 2.0, 5.0, 10.0))
