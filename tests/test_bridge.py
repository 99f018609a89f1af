"""Interest bookkeeping of dynamic bridging (pure)."""

from __future__ import annotations

from supa_realtime.bridge import Interest

T = "realtime:lobby"


def test_withdrawn_interest_is_due_after_the_linger() -> None:
    interest = Interest(ttl=30, linger=5)
    interest.update(T, "p1", True, now=0)
    assert interest.interested(T, 1)
    assert interest.due([T], 1) == []
    interest.update(T, "p1", False, now=2)
    assert not interest.interested(T, 2)
    assert interest.due([T], 6.9) == []
    assert interest.due([T], 7) == [T]


def test_one_process_left_keeps_the_topic() -> None:
    interest = Interest(ttl=30, linger=0)
    interest.update(T, "p1", True, now=0)
    interest.update(T, "p2", True, now=0)
    interest.update(T, "p1", False, now=1)
    assert interest.processes(T, 1) == {"p2"}
    assert interest.due([T], 100 - 71) == []


def test_unrepeated_interest_expires_then_lingers() -> None:
    interest = Interest(ttl=3, linger=2)
    interest.update(T, "dead", True, now=0)
    assert interest.interested(T, 2.9)
    assert not interest.interested(T, 3)
    assert interest.due([T], 4.9) == []
    assert interest.due([T], 5) == [T]


def test_repeated_interest_cancels_the_linger() -> None:
    interest = Interest(ttl=3, linger=2)
    interest.update(T, "p1", False, now=0)
    interest.update(T, "p1", True, now=1)
    assert interest.due([T], 3.9) == []
    interest.update(T, "p1", True, now=3.5)
    assert interest.due([T], 6) == []


def test_a_joined_topic_never_announced_starts_its_linger_when_first_seen() -> None:
    interest = Interest(ttl=3, linger=2)
    assert interest.due([T], 10) == []
    assert interest.due([T], 12) == [T]
    interest.forget(T)
    assert interest.due([T], 12) == []
