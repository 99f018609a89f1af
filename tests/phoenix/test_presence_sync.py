"""Presence sync (supa_realtime.phoenix.presence), PROTOCOL.md §6.5."""

from __future__ import annotations

from typing import Any

import pytest

from supa_realtime.exceptions import RemoteProtocolError
from supa_realtime.phoenix.presence import (
    PresenceDiff,
    PresenceJoin,
    PresenceLeave,
    PresenceSync,
    parse_diff,
    parse_state,
    sync_diff,
    sync_state,
)


def meta(ref: str, **extra: Any) -> dict[str, Any]:
    return {"phx_ref": ref, **extra}


def wire(state: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {key: {"metas": metas} for key, metas in state.items()}


def test_parse_state_and_diff() -> None:
    assert parse_state({"u1": {"metas": [meta("a")]}}) == {"u1": [meta("a")]}
    diff = parse_diff({"joins": {"u1": {"metas": [meta("a")]}}, "leaves": {}})
    assert diff == PresenceDiff({"u1": [meta("a")]}, {})
    with pytest.raises(RemoteProtocolError):
        parse_state({"u1": [meta("a")]})
    with pytest.raises(RemoteProtocolError):
        parse_diff([])


def test_sync_state_from_empty_is_all_joins() -> None:
    out = sync_state({}, {"u1": [meta("a")], "u2": [meta("b"), meta("c")]})
    assert out.state == {"u1": [meta("a")], "u2": [meta("b"), meta("c")]}
    assert out.events == [
        PresenceJoin("u1", [], [meta("a")]),
        PresenceJoin("u2", [], [meta("b"), meta("c")]),
    ]


def test_sync_state_reconciles_by_phx_ref() -> None:
    state = {"u1": [meta("a"), meta("b")], "gone": [meta("g")]}
    new = {"u1": [meta("b"), meta("c")], "u3": [meta("d")]}
    out = sync_state(state, new)
    assert out.state == {"u1": [meta("b"), meta("c")], "u3": [meta("d")]}
    assert out.events == [
        PresenceJoin("u1", [meta("a"), meta("b")], [meta("c")]),
        PresenceJoin("u3", [], [meta("d")]),
        PresenceLeave("gone", [], [meta("g")]),
        PresenceLeave("u1", [meta("b"), meta("c")], [meta("a")]),
    ]
    # Inputs are left alone.
    assert state == {"u1": [meta("a"), meta("b")], "gone": [meta("g")]}


def test_sync_state_with_same_refs_changes_nothing() -> None:
    state = {"u1": [meta("a", x=1)]}
    out = sync_state(state, {"u1": [meta("a", x=1)]})
    assert out.state == state
    assert out.events == []


def test_update_is_join_plus_leave_and_keeps_only_the_new_meta() -> None:
    state = {"u1": [meta("old", status="online")]}
    diff = PresenceDiff(
        joins={"u1": [meta("new", phx_ref_prev="old", status="away")]},
        leaves={"u1": [meta("old", status="online")]},
    )
    out = sync_diff(state, diff)
    assert out.state == {"u1": [meta("new", phx_ref_prev="old", status="away")]}
    assert [type(e).__name__ for e in out.events] == ["PresenceJoin", "PresenceLeave"]


def test_last_leave_removes_the_key() -> None:
    out = sync_diff({"u1": [meta("a")]}, PresenceDiff({}, {"u1": [meta("a")]}))
    assert out.state == {}
    assert out.events == [PresenceLeave("u1", [], [meta("a")])]


def test_unknown_leave_key_is_skipped_and_later_leaves_still_apply() -> None:
    # supabase-py #1630: the official client `break`s at the unknown key and loses "u2".
    state = {"u1": [meta("a")], "u2": [meta("b")]}
    diff = PresenceDiff({}, {"u1": [meta("a")], "ghost": [meta("z")], "u2": [meta("b")]})
    out = sync_diff(state, diff)
    assert out.state == {}
    assert out.events == [
        PresenceLeave("u1", [], [meta("a")]),
        PresenceLeave("u2", [], [meta("b")]),
    ]


def test_presence_sync_buffers_diffs_until_state_of_current_join() -> None:
    sync = PresenceSync()
    early = {"joins": wire({"u2": [meta("b")]}), "leaves": {}}
    assert sync.on_diff(early, "1") is None
    assert sync.pending == 1
    assert sync.state == {}

    out = sync.on_state(wire({"u1": [meta("a")]}), "1")
    assert out.state == {"u1": [meta("a")], "u2": [meta("b")]}
    assert out.events == [
        PresenceJoin("u1", [], [meta("a")]),
        PresenceJoin("u2", [], [meta("b")]),
    ]
    assert sync.pending == 0

    applied = sync.on_diff({"joins": {}, "leaves": wire({"u1": [meta("a")]})}, "1")
    assert applied is not None
    assert sync.state == {"u2": [meta("b")]}

    # A rejoin (new join_ref) buffers again until the new join's state arrives.
    assert sync.on_diff({"joins": wire({"u3": [meta("c")]}), "leaves": {}}, "7") is None
    assert sync.state == {"u2": [meta("b")]}
    out = sync.on_state(wire({"u9": [meta("z")]}), "7")
    assert sync.state == {"u9": [meta("z")], "u3": [meta("c")]}
    assert PresenceLeave("u2", [], [meta("b")]) in out.events


def test_presence_sync_pending_buffer_is_bounded() -> None:
    sync = PresenceSync(max_pending=2)
    for i in range(5):
        sync.on_diff({"joins": wire({f"u{i}": [meta(str(i))]}), "leaves": {}}, "1")
    assert sync.pending == 2
    assert sync.dropped_diffs == 3
    sync.on_state({}, "1")
    assert sorted(sync.state) == ["u3", "u4"]
