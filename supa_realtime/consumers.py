"""Consumer bases for your own code: receive what the worker relays with handler methods.

Example::

    from channels.generic.websocket import AsyncJsonWebsocketConsumer
    from supa_realtime.consumers import RealtimeEventsMixin

    class OrdersConsumer(RealtimeEventsMixin, AsyncJsonWebsocketConsumer):
        realtime_topics = ["orders"]

        async def realtime_postgres_change(self, message):
            await self.send_json(message["data"])

Every ``realtime.*`` message type has a handler here that does nothing, so a consumer only
overrides what it cares about and never fails on a type it did not expect. Batches
(``realtime.batch``, see :mod:`supa_realtime.layers`) are unpacked into single messages, in
order, before your handlers see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .groups import group_for
from .layers import unpack


class RealtimeEventsMixin:
    """Mix into any Channels consumer to receive relayed Supabase Realtime events.

    ``realtime_topics`` lists the topics (``"room1"`` or ``"realtime:room1"``) joined when a
    websocket connects and left when it disconnects; other consumers call
    :meth:`realtime_subscribe` / :meth:`realtime_unsubscribe` themselves.
    """

    realtime_topics: Sequence[str] = ()
    channel_layer: Any
    channel_name: str

    async def realtime_subscribe(self, topic: str) -> None:
        """Start receiving the events of ``topic``."""
        await self.channel_layer.group_add(group_for(topic), self.channel_name)

    async def realtime_unsubscribe(self, topic: str) -> None:
        """Stop receiving the events of ``topic``."""
        await self.channel_layer.group_discard(group_for(topic), self.channel_name)

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        for topic in self.realtime_topics:
            await self.realtime_subscribe(topic)
        await super().websocket_connect(message)  # type: ignore[misc]

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        for topic in self.realtime_topics:
            await self.realtime_unsubscribe(topic)
        await super().websocket_disconnect(message)  # type: ignore[misc]

    async def realtime_batch(self, message: dict[str, Any]) -> None:
        """Hand every message of a batch to its own handler, in order."""
        for inner in unpack(message):
            await self.dispatch(inner)  # type: ignore[attr-defined]

    async def realtime_broadcast(self, message: dict[str, Any]) -> None:
        """A broadcast: ``topic``, ``event``, ``payload`` and maybe ``meta``."""

    async def realtime_postgres_change(self, message: dict[str, Any]) -> None:
        """A database change: ``topic``, ``ids`` and ``data`` (PROTOCOL.md §4.3)."""

    async def realtime_presence_state(self, message: dict[str, Any]) -> None:
        """The whole presence state of ``topic``: ``state``."""

    async def realtime_presence_diff(self, message: dict[str, Any]) -> None:
        """A presence change on ``topic``: ``joins`` and ``leaves``."""

    async def realtime_system(self, message: dict[str, Any]) -> None:
        """A ``system`` message, or a gap notice after a reconnect (``status == "gap"``)."""
