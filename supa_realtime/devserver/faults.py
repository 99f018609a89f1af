"""Fault injection: the misbehaviours client code must survive (PROTOCOL.md §10.11).

Switches (read by every connection as it runs) and one-shot actions. ``reset()`` turns
every switch off.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..phoenix import constants as c
from ..phoenix.message import Message, full_topic
from .presence import new_phx_ref

if TYPE_CHECKING:
    from .context import ServerContext

__all__ = ["Faults"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Refusal:
    remaining: int
    reason: str
    topic: str | None


@dataclass(slots=True)
class _HandshakeRefusal:
    remaining: int
    status: int
    error: str


class Faults:
    """Fault switches and actions of one :class:`~supa_realtime.devserver.DevServer`.

    Attributes:
        withhold_heartbeats: when true, ``heartbeat`` pushes get no reply.
        reply_delay: seconds every ``phx_reply`` waits before it is sent (later frames of
            that socket wait behind it, as on a congested socket).
    """

    def __init__(self, context: ServerContext) -> None:
        self._context = context
        self.withhold_heartbeats = False
        self.reply_delay = 0.0
        self._join_refusals: list[_Refusal] = []
        self._handshake_refusals: list[_HandshakeRefusal] = []

    def reset(self) -> None:
        """Turn every switch off and forget pending refusals."""
        self.withhold_heartbeats = False
        self.reply_delay = 0.0
        self._join_refusals.clear()
        self._handshake_refusals.clear()

    # switches ---------------------------------------------------------------------------

    def refuse_joins(
        self,
        count: int = 1,
        reason: str = "Unknown Error on Channel",
        *,
        topic: str | None = None,
    ) -> None:
        """Answer the next ``count`` joins (of ``topic`` only, when given) with ``reason``.

        ``topic`` may be the subtopic (``"room1"``) or the full topic.
        """
        self._join_refusals.append(
            _Refusal(count, reason, None if topic is None else full_topic(topic))
        )

    def refuse_connections(
        self, count: int = 1, status: int = 500, error: str = "Error connecting to Realtime"
    ) -> None:
        """Answer the next ``count`` websocket upgrades with HTTP ``status`` and ``error``."""
        self._handshake_refusals.append(_HandshakeRefusal(count, status, error))

    def take_join_refusal(self, topic: str) -> str | None:
        """The reason to refuse this join with, if a refusal is pending (counts it)."""
        for refusal in self._join_refusals:
            if refusal.topic is None or refusal.topic == topic:
                refusal.remaining -= 1
                if refusal.remaining <= 0:
                    self._join_refusals.remove(refusal)
                return refusal.reason
        return None

    def take_handshake_refusal(self) -> tuple[int, str] | None:
        if not self._handshake_refusals:
            return None
        refusal = self._handshake_refusals[0]
        refusal.remaining -= 1
        if refusal.remaining <= 0:
            self._handshake_refusals.pop(0)
        return refusal.status, refusal.error

    # actions ----------------------------------------------------------------------------

    async def close_all(self, code: int = c.CLOSE_SERVICE_RESTART, reason: str = "") -> int:
        """Close every socket with ``code`` and ``reason``; the number of sockets closed."""
        connections = list(self._context.connections)
        await asyncio.gather(*(conn.close(code, reason) for conn in connections))
        return len(connections)

    def postgres_changes_error(self, topic: str, message: str) -> int:
        """Push a ``postgres_changes`` ``system`` error to every channel on ``topic``."""
        channels = self._context.hub.channels_on(full_topic(topic))
        for channel in channels:
            channel.conn.queue_message(
                channel.system(c.EXTENSION_POSTGRES_CHANGES, c.STATUS_ERROR, message)
            )
        return len(channels)

    def crash_channels(self, topic: str) -> int:
        """Every channel on ``topic`` dies: ``phx_error`` (clients rejoin), presence leaves."""
        channels = self._context.hub.channels_on(full_topic(topic))
        for channel in channels:
            channel.conn.crash_channel(channel)
        return len(channels)

    def system_message(
        self,
        topic: str,
        message: str,
        *,
        extension: str = c.EXTENSION_SYSTEM,
        status: str = c.STATUS_ERROR,
    ) -> int:
        """Push any ``system`` message to every channel on ``topic`` (the channel stays)."""
        channels = self._context.hub.channels_on(full_topic(topic))
        for channel in channels:
            channel.conn.queue_message(channel.system(extension, status, message))
        return len(channels)

    def presence_diff(self, topic: str, diff: dict[str, Any], *, private: bool = False) -> int:
        """Fan out a hand-made ``presence_diff`` payload to every subscriber of ``topic``."""
        full = full_topic(topic)
        group = (private, full[len(c.TOPIC_PREFIX) :])
        return self._context.hub.fanout(group, Message(full, c.PRESENCE_DIFF, diff))

    def presence_diff_unknown_leave(
        self,
        topic: str,
        key: str = "unknown-presence-key",
        *,
        then_leave: dict[str, Any] | None = None,
        private: bool = False,
    ) -> int:
        """Fan out a ``presence_diff`` whose first leave is a key nobody tracks.

        ``then_leave`` adds more leave entries after it (``key → {"metas": [...]}``), to show
        clients that stop at the unknown key.
        """
        leaves: dict[str, Any] = {key: {"metas": [{"phx_ref": new_phx_ref()}]}}
        leaves.update(then_leave or {})
        return self.presence_diff(topic, {"joins": {}, "leaves": leaves}, private=private)
