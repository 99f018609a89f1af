"""Typed group messages and normalized event objects for what the worker relays.

Group messages (what reaches a Channels group, handled by ``realtime_<kind>`` methods)::

    {"type": "realtime.broadcast",       "topic": T, "event": E, "payload": P[, "meta": M]}
    {"type": "realtime.postgres_change", "topic": T, "ids": [..], "data": {..}}
    {"type": "realtime.presence_state",  "topic": T, "state": {key: {"metas": [..]}}}
    {"type": "realtime.presence_diff",   "topic": T, "joins": {..}, "leaves": {..}}
    {"type": "realtime.system",          "topic": T, "extension": X, "status": S,
                                         "message": text[, "channel": subtopic]}

``T`` is the wire topic (``realtime:room1``); every other field is the wire payload's own,
unchanged, so the frame can be rebuilt exactly (:func:`wire_message`). ``data`` is the
PROTOCOL.md §4.3 change record. A gap notice, sent after a reconnect before any newer
event, is a ``realtime.system`` message with ``extension: "supa_realtime"``,
``status: "gap"`` and ``gap_start`` / ``gap_end`` (Unix seconds, floats).

The event objects are what Django signals carry: small, frozen, with the raw
:class:`~supa_realtime.phoenix.Message` kept in ``raw``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .phoenix import constants as c
from .phoenix.message import Message

PREFIX = "realtime."
BROADCAST = "realtime.broadcast"
POSTGRES_CHANGE = "realtime.postgres_change"
PRESENCE_STATE = "realtime.presence_state"
PRESENCE_DIFF = "realtime.presence_diff"
SYSTEM = "realtime.system"
GAP_EXTENSION = "supa_realtime"
GAP_STATUS = "gap"


def group_message(msg: Message) -> dict[str, Any] | None:
    """The typed group message for a frame received on a joined channel, or ``None`` for
    frames that only concern the connection (replies, ``phx_close``, ...)."""
    event = msg.event
    payload = msg.payload
    if not isinstance(payload, dict):
        return None
    if event == c.BROADCAST:
        out = {"type": BROADCAST, "topic": msg.topic}
        for key, value in payload.items():
            if key != "type":
                out[key] = value
        return out
    if event == c.POSTGRES_CHANGES:
        return {
            "type": POSTGRES_CHANGE,
            "topic": msg.topic,
            "ids": payload.get("ids", []),
            "data": payload.get("data", {}),
        }
    if event == c.PRESENCE_DIFF:
        return {
            "type": PRESENCE_DIFF,
            "topic": msg.topic,
            "joins": payload.get("joins", {}),
            "leaves": payload.get("leaves", {}),
        }
    if event == c.PRESENCE_STATE:
        return {"type": PRESENCE_STATE, "topic": msg.topic, "state": payload}
    if event == c.SYSTEM:
        return {"type": SYSTEM, "topic": msg.topic, **payload}
    return None


def gap_message(topic: str, start: float, end: float) -> dict[str, Any]:
    """The notice that events on ``topic`` may have been missed between ``start`` and ``end``."""
    return {
        "type": SYSTEM,
        "topic": topic,
        "extension": GAP_EXTENSION,
        "status": GAP_STATUS,
        "message": (
            f"the connection to Supabase Realtime was lost from {_iso(start)} to {_iso(end)}; "
            "events in that gap may have been missed, refetch what you show"
        ),
        "gap_start": start,
        "gap_end": end,
    }


def wire_message(message: dict[str, Any]) -> Message:
    """Rebuild the wire :class:`Message` a typed group message came from."""
    kind = message["type"]
    topic = message["topic"]
    if kind == BROADCAST:
        body = {"type": "broadcast"}
        body.update((k, v) for k, v in message.items() if k not in ("type", "topic"))
        return Message(topic, c.BROADCAST, body)
    if kind == POSTGRES_CHANGE:
        return Message(topic, c.POSTGRES_CHANGES, {"ids": message["ids"], "data": message["data"]})
    if kind == PRESENCE_DIFF:
        return Message(
            topic, c.PRESENCE_DIFF, {"joins": message["joins"], "leaves": message["leaves"]}
        )
    if kind == PRESENCE_STATE:
        return Message(topic, c.PRESENCE_STATE, message["state"])
    if kind == SYSTEM:
        body = {k: v for k, v in message.items() if k not in ("type", "topic")}
        return Message(topic, c.SYSTEM, body)
    raise ValueError(f"not a relayed realtime message type: {kind!r}")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class PostgresChange:
    """A row change delivered by Supabase Realtime (PROTOCOL.md §4.3).

    ``record`` is the new row (``None`` for DELETE) and ``old_record`` the replica-identity
    columns of the old row (``None`` for INSERT).
    """

    topic: str
    type: str
    schema: str
    table: str
    commit_timestamp: str | None
    record: dict[str, Any] | None
    old_record: dict[str, Any] | None
    columns: list[dict[str, Any]]
    errors: list[str] | None
    ids: list[int]
    raw: Message = field(repr=False, compare=False)

    @classmethod
    def from_message(cls, msg: Message) -> PostgresChange:
        data = msg.payload.get("data", {})
        return cls(
            topic=msg.topic,
            type=data.get("type", ""),
            schema=data.get("schema", ""),
            table=data.get("table", ""),
            commit_timestamp=data.get("commit_timestamp"),
            record=data.get("record"),
            old_record=data.get("old_record"),
            columns=data.get("columns") or [],
            errors=data.get("errors"),
            ids=msg.payload.get("ids") or [],
            raw=msg,
        )


@dataclass(frozen=True, slots=True)
class BroadcastReceived:
    """A broadcast on a relayed topic: the user ``event`` and its ``payload``."""

    topic: str
    event: str
    payload: Any
    meta: dict[str, Any] | None
    raw: Message = field(repr=False, compare=False)

    @classmethod
    def from_message(cls, msg: Message) -> BroadcastReceived:
        return cls(
            topic=msg.topic,
            event=msg.payload.get("event", ""),
            payload=msg.payload.get("payload"),
            meta=msg.payload.get("meta"),
            raw=msg,
        )


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """A presence state (``kind == "state"``: ``joins`` holds the whole state, ``leaves`` is
    empty) or a presence diff (``kind == "diff"``) on a relayed topic."""

    topic: str
    kind: str
    joins: dict[str, Any]
    leaves: dict[str, Any]
    raw: Message = field(repr=False, compare=False)

    @classmethod
    def from_message(cls, msg: Message) -> PresenceChanged:
        if msg.event == c.PRESENCE_STATE:
            return cls(msg.topic, "state", dict(msg.payload), {}, msg)
        return cls(
            msg.topic, "diff", msg.payload.get("joins", {}), msg.payload.get("leaves", {}), msg
        )
