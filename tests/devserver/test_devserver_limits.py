"""Limit helpers: the presence call window and payload measurement (PROTOCOL.md §8)."""

from __future__ import annotations

from supa_realtime.devserver.limits import Limits, PresenceRateLimiter, payload_size


def test_presence_window_allows_max_calls_then_refuses_until_it_slides() -> None:
    now = [0.0]
    limiter = PresenceRateLimiter(5, 30.0, clock=lambda: now[0])
    assert [limiter.allow() for _ in range(6)] == [True] * 5 + [False]
    now[0] = 29.9
    assert limiter.allow() is False
    now[0] = 30.0
    assert limiter.allow() is True


def test_defaults_are_realtimes() -> None:
    limits = Limits()
    assert (
        limits.max_channels_per_client,
        limits.presence_max_calls,
        limits.presence_window_s,
        limits.max_frame_bytes,
    ) == (100, 5, 30.0, 5_000_000)
    assert limits.max_payload_bytes == 3_000_500


def test_payload_size_counts_json_and_raw_bytes() -> None:
    assert payload_size({"a": 1}) == len(b'{"a":1}')
    assert payload_size(b"\x00" * 10) == 10
    assert payload_size({"event": "e", "payload": b"\x00" * 10}) == 10 + len(b'{"event":"e"}')
