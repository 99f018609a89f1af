"""Backoff policies (supa_realtime.backoff)."""

from __future__ import annotations

import pytest

from supa_realtime.backoff import REJOIN_SCHEDULE, Backoff, Schedule


def test_exponential_without_jitter() -> None:
    b = Backoff(initial=0.5, max_delay=3.0, factor=2.0, jitter=0.0)
    assert [b(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert b(10_000) == 3.0  # no overflow


def test_jitter_scales_within_bounds() -> None:
    low = Backoff(initial=1.0, jitter=0.5, rand=lambda: 0.999999)
    high = Backoff(initial=1.0, jitter=0.5, rand=lambda: 0.0)
    assert high(1) == 1.0
    assert low(1) == pytest.approx(0.5, abs=1e-5)
    real = Backoff(initial=1.0, max_delay=1.0, jitter=0.25)
    delays = [real(n) for n in range(1, 50)]
    assert all(d is not None and 0.75 <= d <= 1.0 for d in delays)


def test_max_retries() -> None:
    b = Backoff(initial=0.1, max_retries=2, jitter=0.0)
    assert b(1) == 0.1
    assert b(2) == 0.2
    assert b(3) is None
    assert Backoff(max_retries=None)(1_000_000) is not None


def test_schedule_repeats_its_last_delay() -> None:
    assert [REJOIN_SCHEDULE(n) for n in range(1, 7)] == [1.0, 2.0, 5.0, 10.0, 10.0, 10.0]
    assert Schedule((0.01,), max_retries=1)(2) is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: Backoff(initial=-1),
        lambda: Backoff(factor=0.5),
        lambda: Backoff(jitter=2),
        lambda: Backoff(max_retries=-1),
        lambda: Schedule(()),
    ],
)
def test_bad_settings_are_refused(make: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        make()  # type: ignore[operator]


def test_tries_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        Backoff()(0)
