"""Server-side rules of a channel join (PROTOCOL.md §3), shared by every server we ship.

Pure data: :class:`JoinConfig` parses a ``phx_join`` payload the way Realtime does (invalid
fields take their defaults, ``null`` bindings are dropped), :func:`parse_bindings` turns its
``postgres_changes`` list into :class:`~supa_realtime.phoenix.filters.Binding` objects and
the join reply's entries, and the constants are the exact texts Realtime sends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from ..exceptions import BindingError
from . import constants as c
from .filters import Binding, binding_id, parse_binding
from .message import Message, subtopic

__all__ = [
    "CHANNEL_LIMIT_REASON",
    "PAYLOAD_SIZE_EXCEEDED",
    "PRESENCE_RATE_MESSAGE",
    "SUBSCRIBED_MESSAGE",
    "TOPIC_NAME_REQUIRED",
    "TRACK_NOT_MAP",
    "TRACK_SIZE_MESSAGE",
    "UNMATCHED_TOPIC",
    "JoinConfig",
    "channel_push",
    "close_push",
    "flexible_bool",
    "parse_bindings",
    "payload_size",
    "refreshed_token",
    "system_push",
    "unmatched_reply",
]

logger = logging.getLogger(__name__)

TOPIC_NAME_REQUIRED: Final = "TopicNameRequired: You must provide a topic name"
UNMATCHED_TOPIC: Final = "unmatched topic"
TRACK_NOT_MAP: Final = "Presence track payload must be a map"
SUBSCRIBED_MESSAGE: Final = "Subscribed to PostgreSQL"
CHANNEL_LIMIT_REASON: Final = "ChannelRateLimitReached: Too many channels"
PRESENCE_RATE_MESSAGE: Final = "Client presence rate limit exceeded"
TRACK_SIZE_MESSAGE: Final = "Track message size exceeded"
PAYLOAD_SIZE_EXCEEDED: Final = "payload_size_exceeded"


def flexible_bool(value: Any, default: bool) -> bool:
    """Realtime's boolean coercion: a bool, or ``"true"``/``"false"`` in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value is not None:
        logger.info("InvalidJoinPayload: expected a boolean, got %s", type(value).__name__)
    return default


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class JoinConfig:
    """The parts of a join payload a server acts on. Invalid fields take their defaults."""

    ack: bool = False
    self_broadcast: bool = False
    presence_enabled: bool = False
    presence_key: str = ""
    private: bool = False
    postgres_changes: tuple[Any, ...] = ()
    access_token: str | None = None

    @classmethod
    def parse(cls, payload: Any) -> JoinConfig:
        payload = payload if isinstance(payload, dict) else {}
        config = payload.get("config")
        config = config if isinstance(config, dict) else {}
        broadcast = _section(config, "broadcast")
        presence = _section(config, "presence")
        key = presence.get("key")
        changes = config.get("postgres_changes")
        token = payload.get("user_token", payload.get("access_token"))
        return cls(
            ack=flexible_bool(broadcast.get("ack"), False),
            self_broadcast=flexible_bool(broadcast.get("self"), False),
            presence_enabled=flexible_bool(presence.get("enabled"), False),
            presence_key="" if key is None or isinstance(key, dict | list) else str(key),
            private=flexible_bool(config.get("private"), False),
            postgres_changes=tuple(x for x in changes if x is not None)
            if isinstance(changes, list)
            else (),
            access_token=token if isinstance(token, str) and not token.startswith("sb_") else None,
        )


def parse_bindings(changes: Iterable[Any]) -> tuple[list[Binding], list[Any], str | None]:
    """The bindings, the join reply's ``postgres_changes`` entries, and the first error.

    A join with any invalid binding subscribes to none: the bindings list is then empty and
    the error is what the ``system`` message says (instead of "Subscribed to PostgreSQL").
    """
    bindings: list[Binding] = []
    entries: list[Any] = []
    error: str | None = None
    for params in changes:
        try:
            binding = parse_binding(params)
        except BindingError as exc:
            error = error or exc.message
            if isinstance(params, dict):
                entries.append({**params, "id": binding_id(params)})
            continue
        bindings.append(binding)
        entries.append(binding.reply_entry())
    if error is not None:
        bindings.clear()
    return bindings, entries, error


def payload_size(payload: Any) -> int:
    """Size of a push payload, in bytes, as the limits measure it."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return len(payload)
    if isinstance(payload, dict):
        inner = payload.get("payload")
        if isinstance(inner, bytes | bytearray | memoryview):
            rest = {k: v for k, v in payload.items() if k != "payload"}
            return len(inner) + len(orjson.dumps(rest))
    try:
        return len(orjson.dumps(payload))
    except TypeError:
        return 0


def refreshed_token(payload: Any, current: str | None) -> Any:
    """The token an ``access_token`` push asks for, or ``None`` when Realtime ignores the
    push (PROTOCOL.md §7.1: no token, the current one again, or an ``sb_`` key). The value
    is returned as sent (it may not even be a string); checking it is the caller's job."""
    token = payload.get("access_token") if isinstance(payload, dict) else None
    if token is None or token == current or (isinstance(token, str) and token.startswith("sb_")):
        return None
    return token


def channel_push(topic: str, join_ref: str | None, event: str, payload: Any) -> Message:
    """A push a joined channel sends itself: ``[join_ref, null, ...]`` (PROTOCOL.md §1.6)."""
    return Message(topic, event, payload, ref=None, join_ref=join_ref)


def system_push(
    topic: str, join_ref: str | None, extension: str, status: str, text: str
) -> Message:
    """A ``system`` message of a channel (PROTOCOL.md §3.7); ``channel`` is the subtopic."""
    return channel_push(
        topic,
        join_ref,
        c.SYSTEM,
        {"extension": extension, "status": status, "message": text, "channel": subtopic(topic)},
    )


def close_push(topic: str, join_ref: str | None, event: str = c.PHX_CLOSE) -> Message:
    """``phx_close`` / ``phx_error``: the join_ref in both ref slots (PROTOCOL.md §7.2)."""
    return Message(topic, event, {}, ref=join_ref, join_ref=join_ref)


def unmatched_reply(message: Message) -> Message:
    """The reply to a message on a topic with no live channel: ``unmatched topic``, with the
    message's ref and no join_ref (PROTOCOL.md §3.1, §7.2)."""
    return Message(
        message.topic,
        c.PHX_REPLY,
        {"status": c.STATUS_ERROR, "response": {"reason": UNMATCHED_TOPIC}},
        ref=message.ref,
        join_ref=None,
    )
