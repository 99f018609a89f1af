"""Topic registry and fan-out (PROTOCOL.md §3.1, §4.3, §5.3, §6).

Every joined channel belongs to one group, ``(private, subtopic)``. A fan-out message is
encoded once per serializer version and the same frame is queued on every receiving
socket: all members of a group share the topic string, and fan-out frames carry no refs.
A message V1 cannot carry (a raw binary broadcast) is skipped for V1 receivers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from ..exceptions import LocalProtocolError
from ..phoenix import constants as c
from ..phoenix.filters import matching_ids
from ..phoenix.message import Message
from ..phoenix.serializer import Serializer, V1Serializer, V2Serializer
from .channel import GroupKey, ServerChannel
from .presence import PresenceRegistry

__all__ = ["Hub"]

logger = logging.getLogger(__name__)

_NOT_CARRIED = object()


class Hub:
    """Every channel of one server, grouped for fan-out, with the server's presence."""

    def __init__(self) -> None:
        self._groups: dict[GroupKey, dict[int, ServerChannel]] = {}
        self._with_bindings: dict[int, ServerChannel] = {}
        self.presence = PresenceRegistry()
        self.serializers: dict[str, Serializer] = {
            c.VSN_1: V1Serializer("server"),
            c.VSN_2: V2Serializer("server"),
        }

    # registry ---------------------------------------------------------------------------

    def add(self, channel: ServerChannel) -> None:
        self._groups.setdefault(channel.group, {})[channel.id] = channel
        if channel.bindings:
            self._with_bindings[channel.id] = channel

    def remove(self, channel: ServerChannel) -> None:
        """Forget ``channel`` and fan out the leave of its presence, if it tracked any."""
        members = self._groups.get(channel.group)
        if members is not None and members.pop(channel.id, None) is not None and not members:
            del self._groups[channel.group]
        self._with_bindings.pop(channel.id, None)
        self.untrack(channel)

    def members(self, group: GroupKey) -> list[ServerChannel]:
        return list(self._groups.get(group, {}).values())

    def channels(self) -> Iterator[ServerChannel]:
        for members in list(self._groups.values()):
            yield from list(members.values())

    def channels_on(self, topic: str) -> list[ServerChannel]:
        """Channels of both privacy groups whose topic is ``topic``."""
        return [ch for ch in self.channels() if ch.topic == topic]

    # fan-out ----------------------------------------------------------------------------

    def encode(self, vsn: str, message: Message) -> str | bytes | None:
        """The frame for ``vsn`` receivers, or ``None`` when that version cannot carry it."""
        try:
            return self.serializers[vsn].encode(message)
        except LocalProtocolError as exc:
            logger.debug("not delivered to vsn %s receivers: %s", vsn, exc)
            return None

    def fanout(
        self, group: GroupKey, message: Message, *, exclude: ServerChannel | None = None
    ) -> int:
        """Queue ``message`` on every member of ``group`` but ``exclude``; frames queued."""
        members = self._groups.get(group)
        if not members:
            return 0
        frames: dict[str, Any] = {}
        sent = 0
        for channel in list(members.values()):
            if channel is exclude:
                continue
            vsn = channel.conn.vsn
            frame = frames.get(vsn, _NOT_CARRIED)
            if frame is _NOT_CARRIED:
                frame = frames[vsn] = self.encode(vsn, message)
            if frame is not None and channel.conn.queue_frame(frame):
                sent += 1
        return sent

    def broadcast(
        self,
        group: GroupKey,
        event: str,
        payload: Any,
        *,
        meta: dict[str, Any] | None = None,
        binary: bool = False,
    ) -> int:
        """A server-originated user broadcast to all of ``group``."""
        body: dict[str, Any] = {"event": event, "payload": payload, "type": "broadcast"}
        if meta is not None:
            body["meta"] = meta
        topic = c.TOPIC_PREFIX + group[1]
        return self.fanout(group, Message(topic, c.BROADCAST, body, binary=binary))

    def emit_change(self, data: dict[str, Any]) -> int:
        """Send one ``postgres_changes`` frame to each channel with matching bindings."""
        sent = 0
        cache: dict[tuple[str, str, tuple[int, ...]], str | bytes | None] = {}
        for channel in list(self._with_bindings.values()):
            ids = matching_ids(channel.bindings, data)
            if not ids:
                continue
            key = (channel.conn.vsn, channel.topic, tuple(ids))
            if key not in cache:
                message = Message(channel.topic, c.POSTGRES_CHANGES, {"ids": ids, "data": data})
                cache[key] = self.encode(channel.conn.vsn, message)
            frame = cache[key]
            if frame is not None and channel.conn.queue_frame(frame):
                sent += 1
        return sent

    # presence ---------------------------------------------------------------------------

    def _diff(self, channel: ServerChannel, diff: dict[str, Any] | None) -> None:
        if diff is not None:
            self.fanout(channel.group, Message(channel.topic, c.PRESENCE_DIFF, diff))

    def track(self, channel: ServerChannel, payload: dict[str, Any]) -> None:
        self._diff(
            channel, self.presence.track(channel.group, channel.presence_key, channel.id, payload)
        )

    def untrack(self, channel: ServerChannel) -> None:
        self._diff(channel, self.presence.untrack(channel.group, channel.presence_key, channel.id))

    def presence_state(self, channel: ServerChannel) -> dict[str, Any]:
        return self.presence.state(channel.group)
