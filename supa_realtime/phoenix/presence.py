"""Phoenix presence sync as pure functions (PROTOCOL.md §6.5).

Theory of operation
-------------------
The server describes presence as ``{key: {"metas": [meta, ...]}}`` where every meta carries
a ``phx_ref`` unique per track. It sends the whole state once per join
(``presence_state``) and then diffs (``presence_diff`` with ``joins`` and ``leaves``, each in
the same shape). Metas are identified by ``phx_ref`` alone.

Here a state is a plain ``{key: [meta, ...]}`` dict. :func:`sync_state` reconciles a local
state with a fresh server state by turning the difference into a diff, and
:func:`sync_diff` applies a diff; both return a new state and leave their inputs alone,
together with the join and leave events, in order, that the application should see.

Two rules that an official client gets wrong are kept here:

* a leave for a key we do not know is skipped, and the remaining leaves of the diff are
  still applied (supabase-py #1630 stops at the first unknown key);
* diffs that arrive before the ``presence_state`` of the *current* join are buffered and
  applied right after it (:class:`PresenceSync`), as phoenix.js does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import RemoteProtocolError

__all__ = [
    "Meta",
    "PresenceDiff",
    "PresenceJoin",
    "PresenceLeave",
    "PresenceState",
    "PresenceSync",
    "SyncOutcome",
    "parse_diff",
    "parse_state",
    "sync_diff",
    "sync_state",
]

Meta = dict[str, Any]
PresenceState = dict[str, list[Meta]]

REF_KEY = "phx_ref"


@dataclass(frozen=True, slots=True)
class PresenceDiff:
    joins: PresenceState = field(default_factory=dict)
    leaves: PresenceState = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PresenceJoin:
    """``key`` gained ``new`` metas; ``current`` is what the key held before (may be empty)."""

    key: str
    current: list[Meta]
    new: list[Meta]


@dataclass(frozen=True, slots=True)
class PresenceLeave:
    """``key`` lost ``left`` metas; ``current`` is what remains (empty: the key is gone)."""

    key: str
    current: list[Meta]
    left: list[Meta]


PresenceEvent = PresenceJoin | PresenceLeave


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """The new state and the events, in order, that produced it."""

    state: PresenceState
    events: list[PresenceEvent]


def _metas(entry: Any, what: str) -> list[Meta]:
    metas = entry.get("metas") if isinstance(entry, dict) else None
    if not isinstance(metas, list) or not all(isinstance(m, dict) for m in metas):
        raise RemoteProtocolError(f"{what} entry must be {{'metas': [object, ...]}}")
    return list(metas)


def parse_state(payload: Any) -> PresenceState:
    """``{key: {"metas": [...]}}`` from the wire → ``{key: [...]}``."""
    if not isinstance(payload, dict):
        raise RemoteProtocolError("presence_state payload must be an object")
    return {str(key): _metas(entry, "presence_state") for key, entry in payload.items()}


def parse_diff(payload: Any) -> PresenceDiff:
    """A ``presence_diff`` payload → :class:`PresenceDiff`."""
    if not isinstance(payload, dict):
        raise RemoteProtocolError("presence_diff payload must be an object")
    joins, leaves = payload.get("joins") or {}, payload.get("leaves") or {}
    if not isinstance(joins, dict) or not isinstance(leaves, dict):
        raise RemoteProtocolError("presence_diff joins and leaves must be objects")
    return PresenceDiff(
        joins={str(k): _metas(v, "presence_diff join") for k, v in joins.items()},
        leaves={str(k): _metas(v, "presence_diff leave") for k, v in leaves.items()},
    )


def _refs(metas: list[Meta]) -> set[Any]:
    return {m.get(REF_KEY) for m in metas}


def sync_state(state: Mapping[str, list[Meta]], new_state: Mapping[str, list[Meta]]) -> SyncOutcome:
    """Reconcile ``state`` with a complete server state.

    Keys missing from ``new_state`` leave; for keys in both, metas with a new ``phx_ref``
    join and metas whose ``phx_ref`` disappeared leave; new keys join.
    """
    joins: PresenceState = {}
    leaves: PresenceState = {}
    for key, metas in state.items():
        if key not in new_state:
            leaves[key] = list(metas)
    for key, new_metas in new_state.items():
        current = state.get(key)
        if current is None:
            joins[key] = list(new_metas)
            continue
        current_refs, new_refs = _refs(current), _refs(new_metas)
        joined = [m for m in new_metas if m.get(REF_KEY) not in current_refs]
        left = [m for m in current if m.get(REF_KEY) not in new_refs]
        if joined:
            joins[key] = joined
        if left:
            leaves[key] = left
    return sync_diff(state, PresenceDiff(joins, leaves))


def sync_diff(state: Mapping[str, list[Meta]], diff: PresenceDiff) -> SyncOutcome:
    """Apply ``diff`` to ``state``: joins first, then leaves (an update is join + leave).

    A joined key holds the joined metas, preceded by its current metas whose ``phx_ref``
    is not among them. A leave removes the listed refs and drops the key once empty; a
    leave for an unknown key is skipped and the next leave is still processed.
    """
    new: PresenceState = {key: list(metas) for key, metas in state.items()}
    events: list[PresenceEvent] = []
    for key, joined in diff.joins.items():
        current = new.get(key, [])
        joined_refs = _refs(joined)
        new[key] = [m for m in current if m.get(REF_KEY) not in joined_refs] + list(joined)
        events.append(PresenceJoin(key, list(current), list(joined)))
    for key, left in diff.leaves.items():
        held = new.get(key)
        if held is None:
            continue  # unknown key: skip it, keep going (supabase-py #1630 breaks here)
        left_refs = _refs(left)
        remaining = [m for m in held if m.get(REF_KEY) not in left_refs]
        events.append(PresenceLeave(key, remaining, list(left)))
        if remaining:
            new[key] = remaining
        else:
            del new[key]
    return SyncOutcome(new, events)


class PresenceSync:
    """Presence state of one channel across its joins.

    ``join_ref`` arguments are the channel's *current* join_ref. A state is remembered with
    the join_ref it arrived under; until a state arrives for the current join_ref, diffs are
    buffered (at most ``max_pending``; the oldest is dropped and counted in
    :attr:`dropped_diffs`, since the next state reconciles everything anyway).
    """

    def __init__(self, max_pending: int = 1000) -> None:
        self.state: PresenceState = {}
        self.state_join_ref: str | None = None
        self.dropped_diffs = 0
        self._pending: deque[PresenceDiff] = deque()
        self._max_pending = max_pending

    def in_pending_sync(self, join_ref: str | None) -> bool:
        """True while no state has arrived for ``join_ref``."""
        return self.state_join_ref is None or self.state_join_ref != join_ref

    def on_state(self, payload: Any, join_ref: str | None) -> SyncOutcome:
        """A ``presence_state`` arrived: sync to it, then apply the buffered diffs."""
        outcome = sync_state(self.state, parse_state(payload))
        self.state_join_ref = join_ref
        events = list(outcome.events)
        state = outcome.state
        while self._pending:
            applied = sync_diff(state, self._pending.popleft())
            state = applied.state
            events.extend(applied.events)
        self.state = state
        return SyncOutcome(state, events)

    def on_diff(self, payload: Any, join_ref: str | None) -> SyncOutcome | None:
        """A ``presence_diff`` arrived: apply it, or buffer it and return ``None``."""
        diff = parse_diff(payload)
        if self.in_pending_sync(join_ref):
            if len(self._pending) >= self._max_pending:
                self._pending.popleft()
                self.dropped_diffs += 1
            self._pending.append(diff)
            return None
        outcome = sync_diff(self.state, diff)
        self.state = outcome.state
        return outcome

    @property
    def pending(self) -> int:
        """How many diffs are buffered."""
        return len(self._pending)
