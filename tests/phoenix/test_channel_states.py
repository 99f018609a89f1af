"""The channel state table (supa_realtime.phoenix.channel)."""

from __future__ import annotations

import itertools

import pytest

from supa_realtime.exceptions import LocalProtocolError
from supa_realtime.phoenix.channel import (
    TRANSITIONS,
    ChannelEvent,
    ChannelMachine,
    ChannelState,
    is_stale,
)
from supa_realtime.phoenix.message import Message

S, E = ChannelState, ChannelEvent


def machine_in(state: ChannelState) -> ChannelMachine:
    m = ChannelMachine()
    m.state = state
    return m


def test_happy_path() -> None:
    m = ChannelMachine()
    assert m.handle(E.JOIN, join_ref="1") is S.JOINING
    assert m.join_ref == "1"
    assert not m.joined_once
    assert m.handle(E.JOIN_OK) is S.JOINED
    assert m.joined_once
    assert m.handle(E.LEAVE) is S.LEAVING
    assert m.handle(E.LEAVE_OK) is S.CLOSED


def test_errored_then_rejoined_with_a_new_join_ref() -> None:
    m = ChannelMachine()
    m.handle(E.JOIN, join_ref="1")
    assert m.handle(E.JOIN_ERROR) is S.ERRORED
    assert m.should_rejoin
    assert m.handle(E.REJOIN, join_ref="5") is S.JOINING
    assert m.join_ref == "5"
    assert m.handle(E.JOIN_OK) is S.JOINED
    assert m.handle(E.SOCKET_CLOSED) is S.ERRORED
    assert m.handle(E.REJOIN, join_ref="9") is S.JOINING


def test_join_timeout_abandons_the_join_ref() -> None:
    m = ChannelMachine()
    m.handle(E.JOIN, join_ref="4")
    assert m.handle(E.JOIN_TIMEOUT) is S.ERRORED
    assert m.join_ref is None
    # The phx_close answering the phx_leave sent for the abandoned join is stale.
    assert is_stale(Message("realtime:a", "phx_close", {}, ref="4", join_ref="4"), m.join_ref)


@pytest.mark.parametrize("state", [S.JOINING, S.JOINED, S.LEAVING, S.ERRORED])
def test_phx_close_always_ends_closed_and_is_not_rejoined(state: ChannelState) -> None:
    m = machine_in(state)
    assert m.handle(E.PHX_CLOSE) is S.CLOSED
    assert not m.should_rejoin
    with pytest.raises(LocalProtocolError):
        m.handle(E.REJOIN, join_ref="2")


@pytest.mark.parametrize("state", list(S))
def test_local_close_is_legal_everywhere(state: ChannelState) -> None:
    assert machine_in(state).handle(E.CLOSE) is S.CLOSED


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.JOINING, E.JOIN),
        (S.JOINED, E.JOIN),
        (S.CLOSED, E.JOIN_OK),
        (S.JOINED, E.JOIN_OK),
        (S.CLOSED, E.REJOIN),
        (S.JOINED, E.REJOIN),
        (S.JOINED, E.LEAVE_OK),
    ],
)
def test_illegal_transitions_raise(state: ChannelState, event: ChannelEvent) -> None:
    m = machine_in(state)
    assert not m.can(event)
    with pytest.raises(LocalProtocolError, match="illegal channel transition"):
        m.handle(event, join_ref="1")
    assert m.state is state


def test_join_needs_a_join_ref() -> None:
    with pytest.raises(LocalProtocolError, match="join_ref"):
        ChannelMachine().handle(E.JOIN)


def test_table_is_the_whole_machine() -> None:
    # Every (state, event) pair is either in the table or refused; nothing else decides.
    for state, event in itertools.product(S, E):
        m = machine_in(state)
        if (state, event) in TRANSITIONS:
            assert m.handle(event, join_ref="x") is TRANSITIONS[(state, event)]
        else:
            with pytest.raises(LocalProtocolError):
                m.handle(event, join_ref="x")
    # Every state can reach CLOSED, and only ERRORED rejoins.
    assert {s for (s, e) in TRANSITIONS if e is E.REJOIN} == {S.ERRORED}


@pytest.mark.parametrize(
    ("message", "stale"),
    [
        (Message("realtime:a", "system", {}, ref=None, join_ref="3"), False),
        (Message("realtime:a", "system", {}, ref=None, join_ref="1"), True),
        (Message("realtime:a", "broadcast", {}, ref=None, join_ref=None), False),
        (Message("realtime:a", "phx_close", {}, ref="3", join_ref="3"), False),
        (Message("realtime:a", "phx_close", {}, ref="1", join_ref="1"), True),
        (Message("realtime:a", "phx_error", {}, ref="1", join_ref=None), True),  # V1
        (Message("realtime:a", "phx_error", {}, ref="3", join_ref=None), False),  # V1
        (Message("realtime:a", "presence_state", {}, ref=None, join_ref="2"), True),
    ],
)
def test_is_stale(message: Message, stale: bool) -> None:
    assert is_stale(message, "3") is stale
