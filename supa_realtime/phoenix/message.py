"""The one message type both serializers produce and consume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import constants as c


@dataclass(frozen=True, slots=True)
class Message:
    """One Phoenix message: ``[join_ref, ref, topic, event, payload]``.

    ``payload`` is any JSON value; for a user broadcast it is ``{"type": "broadcast",
    "event": <user event>, "payload": <JSON value or bytes>[, "meta": {...}]}``.

    ``binary`` marks a user broadcast that travels, or arrived, as a V2 binary frame
    (kind 3 from a client, kind 4 from the server). A V2 serializer encodes such a message
    as binary; a V1 serializer as JSON text (and refuses a ``bytes`` payload, which V1
    cannot carry).
    """

    topic: str
    event: str
    payload: Any
    ref: str | None = None
    join_ref: str | None = None
    binary: bool = False

    @property
    def is_reply(self) -> bool:
        return self.event == c.PHX_REPLY

    @property
    def status(self) -> str | None:
        """The reply status (``"ok"`` / ``"error"``), or ``None`` if this is not a reply."""
        if self.event != c.PHX_REPLY or not isinstance(self.payload, dict):
            return None
        status = self.payload.get("status")
        return status if isinstance(status, str) else None

    @property
    def response(self) -> Any:
        """The reply's ``response`` object (``None`` if this is not a reply)."""
        if self.event != c.PHX_REPLY or not isinstance(self.payload, dict):
            return None
        return self.payload.get("response")


def reply(request: Message, status: str, response: Any, *, join_ref: str | None = None) -> Message:
    """The ``phx_reply`` answering ``request`` (refs echoed as PROTOCOL.md §1.6 says)."""
    return Message(
        topic=request.topic,
        event=c.PHX_REPLY,
        payload={"status": status, "response": response},
        ref=request.ref,
        join_ref=request.join_ref if join_ref is None else join_ref,
    )


def user_broadcast(
    topic: str,
    event: str,
    payload: Any,
    *,
    meta: dict[str, Any] | None = None,
    ref: str | None = None,
    join_ref: str | None = None,
    binary: bool = False,
) -> Message:
    """A ``broadcast`` message carrying a user event, as clients push it and servers fan it out."""
    body: dict[str, Any] = {"type": "broadcast", "event": event, "payload": payload}
    if meta is not None:
        body["meta"] = meta
    return Message(topic, c.BROADCAST, body, ref=ref, join_ref=join_ref, binary=binary)


def subtopic(topic: str) -> str:
    """``realtime:room1`` → ``room1`` (the name REST, RLS and ``system`` messages use)."""
    return topic[len(c.TOPIC_PREFIX) :] if topic.startswith(c.TOPIC_PREFIX) else topic


def full_topic(name: str) -> str:
    """``room1`` → ``realtime:room1``; a name that already has the prefix is kept."""
    return name if name.startswith(c.TOPIC_PREFIX) else c.TOPIC_PREFIX + name
