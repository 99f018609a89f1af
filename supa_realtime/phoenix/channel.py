"""The lifecycle of one channel as a single state table.

Theory of operation
-------------------
A channel is in exactly one of five states (the Phoenix names)::

    CLOSED ──join──▶ JOINING ──join ok──▶ JOINED ──leave──▶ LEAVING ──leave ok──▶ CLOSED
                       │  ▲                  │                 │
      join error,      │  │ rejoin           │ phx_error,      │ phx_close, socket closed,
      join timeout,    ▼  │                  │ socket closed   │ leave timeout
      phx_error,     ERRORED ◀───────────────┘                 ▼
      socket closed                                          CLOSED

A join timeout forgets the join_ref, since that join is abandoned.

``phx_close`` from the server (after a leave, a ``system`` error, a duplicate join) ends
in CLOSED from any live state, and a closed channel is never rejoined. ``close`` is the
local teardown (the client shut down) and also ends in CLOSED from anywhere.

:data:`TRANSITIONS` is the whole machine; anything missing from it is illegal and
:meth:`ChannelMachine.handle` raises :class:`~supa_realtime.exceptions.LocalProtocolError`.
Events that can legitimately arrive late (a join reply while leaving, a socket close while
already errored) are listed as self-transitions so callers never need to special-case them.

Stale frames are the other half of the job. Every join gets a new ``join_ref``;
:func:`is_stale` says whether a server frame belongs to an earlier join of this channel
(PROTOCOL.md §1.6 and §7.4): a non-null ``join_ref`` that differs from the current one, or a
``phx_close`` / ``phx_error`` whose ``ref`` is not the current join_ref.
"""

from __future__ import annotations

import enum

from ..exceptions import LocalProtocolError
from . import constants as c
from .message import Message

__all__ = ["TRANSITIONS", "ChannelEvent", "ChannelMachine", "ChannelState", "is_stale"]


class ChannelState(enum.Enum):
    CLOSED = "closed"
    JOINING = "joining"
    JOINED = "joined"
    LEAVING = "leaving"
    ERRORED = "errored"


class ChannelEvent(enum.Enum):
    JOIN = "join"  # the user subscribed
    REJOIN = "rejoin"  # the rejoin timer fired, or the socket reopened
    JOIN_OK = "join ok"
    JOIN_ERROR = "join error"
    JOIN_TIMEOUT = "join timeout"
    LEAVE = "leave"  # the user unsubscribed
    LEAVE_OK = "leave ok"  # the leave was answered, or timed out, or needs no answer
    PHX_CLOSE = "phx_close"
    PHX_ERROR = "phx_error"
    SOCKET_CLOSED = "socket closed"
    CLOSE = "close"  # local teardown: the client is shutting down


S = ChannelState
E = ChannelEvent

TRANSITIONS: dict[tuple[ChannelState, ChannelEvent], ChannelState] = {
    # Not joined.
    (S.CLOSED, E.JOIN): S.JOINING,
    (S.CLOSED, E.LEAVE): S.CLOSED,
    (S.CLOSED, E.SOCKET_CLOSED): S.CLOSED,
    (S.CLOSED, E.PHX_CLOSE): S.CLOSED,
    (S.CLOSED, E.CLOSE): S.CLOSED,
    # Waiting for the join reply.
    (S.JOINING, E.JOIN_OK): S.JOINED,
    (S.JOINING, E.JOIN_ERROR): S.ERRORED,
    (S.JOINING, E.JOIN_TIMEOUT): S.ERRORED,
    (S.JOINING, E.PHX_ERROR): S.ERRORED,
    (S.JOINING, E.SOCKET_CLOSED): S.ERRORED,
    (S.JOINING, E.PHX_CLOSE): S.CLOSED,
    (S.JOINING, E.LEAVE): S.LEAVING,
    (S.JOINING, E.CLOSE): S.CLOSED,
    # Joined.
    (S.JOINED, E.LEAVE): S.LEAVING,
    (S.JOINED, E.PHX_CLOSE): S.CLOSED,
    (S.JOINED, E.PHX_ERROR): S.ERRORED,
    (S.JOINED, E.SOCKET_CLOSED): S.ERRORED,
    (S.JOINED, E.CLOSE): S.CLOSED,
    # Leaving: late join outcomes are harmless.
    (S.LEAVING, E.LEAVE_OK): S.CLOSED,
    (S.LEAVING, E.PHX_CLOSE): S.CLOSED,
    (S.LEAVING, E.PHX_ERROR): S.CLOSED,
    (S.LEAVING, E.SOCKET_CLOSED): S.CLOSED,
    (S.LEAVING, E.LEAVE): S.LEAVING,
    (S.LEAVING, E.JOIN_OK): S.LEAVING,
    (S.LEAVING, E.JOIN_ERROR): S.LEAVING,
    (S.LEAVING, E.JOIN_TIMEOUT): S.LEAVING,
    (S.LEAVING, E.CLOSE): S.CLOSED,
    # Errored: waiting for the rejoin timer or the socket.
    (S.ERRORED, E.REJOIN): S.JOINING,
    (S.ERRORED, E.SOCKET_CLOSED): S.ERRORED,
    (S.ERRORED, E.PHX_ERROR): S.ERRORED,
    (S.ERRORED, E.PHX_CLOSE): S.CLOSED,
    (S.ERRORED, E.LEAVE): S.LEAVING,
    (S.ERRORED, E.CLOSE): S.CLOSED,
}


class ChannelMachine:
    """The state of one channel plus the join_ref of its current join."""

    __slots__ = ("join_ref", "joined_once", "state")

    def __init__(self) -> None:
        self.state = ChannelState.CLOSED
        self.join_ref: str | None = None
        self.joined_once = False

    def handle(self, event: ChannelEvent, *, join_ref: str | None = None) -> ChannelState:
        """Apply ``event`` and return the new state.

        ``join_ref`` is required with JOIN and REJOIN: the ref of the ``phx_join`` about to
        be sent, which becomes the current join_ref.

        Raises:
            LocalProtocolError: the transition is not in :data:`TRANSITIONS`.
        """
        try:
            new = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise LocalProtocolError(
                f"illegal channel transition: {event.value!r} in state {self.state.value!r}"
            ) from None
        if event in (ChannelEvent.JOIN, ChannelEvent.REJOIN):
            if join_ref is None:
                raise LocalProtocolError(f"{event.value!r} needs the join_ref of the phx_join")
            self.join_ref = join_ref
        elif event is ChannelEvent.JOIN_OK and new is ChannelState.JOINED:
            self.joined_once = True
        elif event is ChannelEvent.JOIN_TIMEOUT:
            # That join is abandoned (the client sends phx_leave for it): its late reply,
            # phx_close or phx_error must count as stale, not end the channel.
            self.join_ref = None
        self.state = new
        return new

    def can(self, event: ChannelEvent) -> bool:
        """Whether ``event`` is legal in the current state."""
        return (self.state, event) in TRANSITIONS

    @property
    def should_rejoin(self) -> bool:
        """True when the channel wants to be joined but is not (state ERRORED)."""
        return self.state is ChannelState.ERRORED


def is_stale(message: Message, join_ref: str | None) -> bool:
    """Whether a server frame belongs to an earlier join of the channel.

    ``phx_close`` and ``phx_error`` carry the join_ref they end in ``ref`` under both
    serializers, so they are matched on it. Other frames are stale when they carry a
    non-null ``join_ref`` (V2 pushes from the channel process) that is not the current one;
    fan-out frames (``[null, null, ...]``) and every V1 frame carry none and are kept.
    Replies are correlated by ``ref`` and should be routed before this check.
    """
    if message.event in (c.PHX_CLOSE, c.PHX_ERROR):
        return message.ref is not None and message.ref != join_ref
    return message.join_ref is not None and message.join_ref != join_ref
