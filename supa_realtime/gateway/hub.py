"""One fan-out point per ASGI process: the gateway's only member of Channels groups.

Theory of operation
-------------------
Browsers' sockets do not each join Channels groups. The process's :class:`Hub` has one
channel on the layer, joins ``group_for(topic)`` while at least one local socket has joined
``topic`` and leaves it with the last one. Each group message that arrives (from the
worker, from ``broadcast()``, from a browser of any process, or a presence change) is
turned into a wire frame **once per serializer version** and the same frame is written to
every subscribed socket of this process; ``postgres_changes`` frames differ by the
subscriber's matching binding ids, so they are cached per ``(vsn, ids)``.

A browser's broadcast is published to the group with a ``gateway`` field
``{"origin": <hub id>/<join id>, "binary": bool}`` so the hub can leave out the sender
(``self: false``) and keep binary payloads binary; the field is not part of the wire frame.

Bridging hook: on the first local join of a topic that matches
``SUPA_REALTIME["GATEWAY"]["BRIDGE"]``, and again every ``BRIDGE_REFRESH`` seconds while it
stays joined, the hub sends ``{"type": "realtime.bridge", "topic": T, "interest": True,
"process": <hub id>}`` to the channel :data:`BRIDGE_CHANNEL`; after the last local leave it
sends the same with ``"interest": False``. The worker acts on these.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Final

import orjson

from .. import events
from ..exceptions import LocalProtocolError
from ..groups import group_for
from ..layers import unpack
from ..outbox import APPEND_LUA, OutboxKeys, append_args
from ..phoenix import constants as c
from ..phoenix.filters import matching_ids
from ..phoenix.message import Message, subtopic
from ..phoenix.serializer import Serializer, V1Serializer, V2Serializer

if TYPE_CHECKING:
    from ..presence import PresenceStore
    from .consumer import GatewayChannel, RealtimeConsumer

__all__ = ["BRIDGE_CHANNEL", "BRIDGE_TYPE", "GATEWAY_FIELD", "Hub", "encode", "send_event"]

logger = logging.getLogger(__name__)

#: The channel-layer channel that receives bridging interest (read by the worker).
BRIDGE_CHANNEL: Final = "supa_realtime.bridge"
BRIDGE_TYPE: Final = "realtime.bridge"
#: The field of a group ``realtime.broadcast`` that carries the gateway's own markers.
GATEWAY_FIELD: Final = "gateway"
#: Seconds between renewals of the hub's group memberships (they expire after a day).
GROUP_REFRESH: Final = 3600.0
RECEIVE_RETRY_DELAY: Final = 1.0
_NOT_CARRIED: Final = object()
_SERVERS: Final[dict[str, Serializer]] = {
    c.VSN_1: V1Serializer("server"),
    c.VSN_2: V2Serializer("server"),
}


def send_event(frame: str | bytes) -> dict[str, Any]:
    """The ASGI ``websocket.send`` event that carries ``frame``."""
    if isinstance(frame, str):
        return {"type": "websocket.send", "text": frame}
    return {"type": "websocket.send", "bytes": frame}


def _event(vsn: str, message: Message) -> dict[str, Any] | None:
    frame = encode(vsn, message)
    return None if frame is None else send_event(frame)


def encode(vsn: str, message: Message) -> str | bytes | None:
    """The frame for ``vsn`` receivers, or ``None`` when that version cannot carry it."""
    try:
        return _SERVERS[vsn].encode(message)
    except LocalProtocolError as exc:
        logger.debug("not delivered to vsn %s receivers: %s", vsn, exc)
        return None


class Hub:
    """The gateway's fan-out and bookkeeping for one process and event loop."""

    def __init__(
        self,
        layer: Any,
        presence: PresenceStore | None,
        *,
        redis: Any = None,
        redis_prefix: str = "supa_realtime",
        relayed: Iterable[str] = (),
        bridge: Iterable[str] = (),
        bridge_refresh: float = 10.0,
        idle_timeout: float = 60.0,
    ) -> None:
        self.layer = layer
        self.presence = presence
        self.id = presence.process_id if presence is not None else uuid.uuid4().hex
        self.bridge_patterns = tuple(bridge)
        self.relayed = frozenset(relayed)
        self.redis = redis
        self.outbox = OutboxKeys(redis_prefix)
        self.bridge_refresh = bridge_refresh
        self.idle_timeout = idle_timeout
        self.channel_name = ""
        self.topics: dict[str, dict[int, GatewayChannel]] = {}
        self.connections: set[RealtimeConsumer] = set()
        self._group_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.delivered = 0

    # lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.layer is not None:
            self.channel_name = await self.layer.new_channel("gateway.")
            self._tasks.append(asyncio.create_task(self._receive_loop(), name="gateway-hub"))
        self._tasks.append(asyncio.create_task(self._upkeep_loop(), name="gateway-upkeep"))
        if self.presence is not None:
            self.presence.start()
        logger.info("gateway hub %s started", self.id[:8])

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.presence is not None:
            await self.presence.stop()

    # subscriptions -----------------------------------------------------------------------

    async def subscribe(self, channel: GatewayChannel) -> None:
        """Deliver ``channel.topic``'s group messages to ``channel`` from now on."""
        topic = channel.topic
        async with self._group_lock:
            members = self.topics.get(topic)
            first = members is None
            if members is None:
                members = self.topics[topic] = {}
                if self.layer is not None:
                    await self.layer.group_add(group_for(topic), self.channel_name)
            members[channel.id] = channel
        if first and self.bridged(topic):
            await self._bridge(topic, True)

    async def unsubscribe(self, channel: GatewayChannel) -> None:
        topic = channel.topic
        async with self._group_lock:
            members = self.topics.get(topic)
            if members is None or members.pop(channel.id, None) is None:
                return
            last = not members
            if last:
                del self.topics[topic]
                if self.layer is not None:
                    await self.layer.group_discard(group_for(topic), self.channel_name)
        if last and self.bridged(topic):
            await self._bridge(topic, False)

    def bridged(self, topic: str) -> bool:
        """Whether ``topic`` matches ``GATEWAY["BRIDGE"]``."""
        sub = subtopic(topic)
        return any(fnmatchcase(sub, p) for p in self.bridge_patterns)

    def forwarded(self, topic: str) -> bool:
        """Whether browsers' broadcasts on ``topic`` go on to Supabase: a bridged topic, or
        one of ``SUBSCRIPTIONS`` (the worker is joined to it)."""
        return topic in self.relayed or self.bridged(topic)

    async def forward(self, topic: str, event: str, payload: Any) -> None:
        """Queue a browser's broadcast for Supabase through the outbox, once.

        Local sockets get it from the group (the gateway publishes it there itself); the
        worker sends it with ``self: false``, so Supabase does not echo it back.
        """
        if self.redis is None:
            return
        from ..conf import settings as realtime_settings

        retention = realtime_settings.BROADCAST
        data = orjson.dumps(payload if isinstance(payload, dict) else {"value": payload})
        try:
            await self.redis.eval(
                APPEND_LUA,
                2,
                self.outbox.stream,
                self.outbox.dropped,
                *append_args(
                    topic,
                    event,
                    data,
                    False,
                    retention_seconds=retention.retention_seconds,
                    retention_messages=retention.retention_messages,
                ),
            )
        except Exception:
            logger.exception("broadcast on %r not queued for Supabase", topic)

    async def _bridge(self, topic: str, interest: bool) -> None:
        if self.layer is None:
            return
        message = {"type": BRIDGE_TYPE, "topic": topic, "interest": interest, "process": self.id}
        try:
            await self.layer.send(BRIDGE_CHANNEL, message)
        except Exception:
            logger.exception("bridge interest for %r not sent", topic)

    # fan-out -----------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        rejoin = False
        while True:
            if rejoin and not await self._rejoin_groups():
                await asyncio.sleep(RECEIVE_RETRY_DELAY)
                continue
            rejoin = False
            try:
                message = await self.layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis went away: wait, then join every group again before receiving (a
                # restarted Redis has forgotten them).
                logger.exception("gateway: receiving from the channel layer failed; retrying")
                rejoin = True
                await asyncio.sleep(RECEIVE_RETRY_DELAY)
                continue
            try:
                for inner in unpack(message):
                    await self.deliver(inner)
            except Exception:
                logger.exception("gateway: failed to deliver %r", message.get("type"))

    async def _rejoin_groups(self) -> bool:
        """Add this hub to every subscribed topic's group again (memberships expire after
        the layer's ``group_expiry``, one day by default, and vanish when Redis restarts).
        ``False`` if the layer failed."""
        if self.layer is None:
            return True
        for topic in list(self.topics):
            try:
                await self.layer.group_add(group_for(topic), self.channel_name)
            except Exception:
                logger.exception("gateway: could not rejoin the group of %r", topic)
                return False
        if self.topics:
            logger.info("gateway: rejoined %d topic groups", len(self.topics))
        return True

    async def deliver(self, message: dict[str, Any]) -> int:
        """Write one typed group message to every subscribed local socket; frames written."""
        topic = message.get("topic")
        members = self.topics.get(topic) if isinstance(topic, str) else None
        if not members:
            return 0
        kind = message.get("type")
        if kind == events.BROADCAST:
            return await self._broadcast(topic, message, members)  # type: ignore[arg-type]
        if kind == events.POSTGRES_CHANGE:
            return await self._change(message, members)
        if kind == events.PRESENCE_DIFF:
            wire = Message(
                topic,  # type: ignore[arg-type]
                c.PRESENCE_DIFF,
                {"joins": message.get("joins", {}), "leaves": message.get("leaves", {})},
            )
            return await self._fanout(wire, members.values(), None)
        if kind == events.SYSTEM and message.get("status") == events.GAP_STATUS:
            return await self._gap(message, members)
        return 0

    async def _broadcast(
        self, topic: str, message: dict[str, Any], members: dict[int, GatewayChannel]
    ) -> int:
        marker = message.get(GATEWAY_FIELD)
        origin: str | None = None
        binary = False
        if isinstance(marker, dict):
            origin = marker.get("origin")
            binary = bool(marker.get("binary"))
        body: dict[str, Any] = {"type": "broadcast"}
        for key, value in message.items():
            if key not in ("type", "topic", GATEWAY_FIELD):
                body[key] = value
        wire = Message(topic, c.BROADCAST, body, binary=binary)
        exclude = None
        if origin is not None and origin.startswith(self.id + "/"):
            exclude = int(origin.rsplit("/", 1)[1])
        return await self._fanout(wire, members.values(), exclude)

    async def _fanout(
        self, wire: Message, members: Iterable[GatewayChannel], exclude: int | None
    ) -> int:
        events_by_vsn: dict[str, Any] = {}
        sent = 0
        for channel in list(members):
            if channel.id == exclude and not channel.config.self_broadcast:
                continue
            conn = channel.conn
            vsn = conn.vsn
            event = events_by_vsn.get(vsn, _NOT_CARRIED)
            if event is _NOT_CARRIED:
                event = events_by_vsn[vsn] = _event(vsn, wire)
            if event is not None and await conn.send_event(event):
                sent += 1
        self.delivered += sent
        return sent

    async def _change(self, message: dict[str, Any], members: dict[int, GatewayChannel]) -> int:
        data = message.get("data")
        if not isinstance(data, dict):
            return 0
        topic = message["topic"]
        cache: dict[tuple[str, tuple[int, ...]], dict[str, Any] | None] = {}
        sent = 0
        for channel in list(members.values()):
            if not channel.bindings:
                continue
            ids = matching_ids(channel.bindings, data)
            if not ids:
                continue
            vsn = channel.conn.vsn
            key = (vsn, tuple(ids))
            if key not in cache:
                cache[key] = _event(
                    vsn, Message(topic, c.POSTGRES_CHANGES, {"ids": ids, "data": data})
                )
            event = cache[key]
            if event is not None and await channel.conn.send_event(event):
                sent += 1
        self.delivered += sent
        return sent

    async def _gap(self, message: dict[str, Any], members: dict[int, GatewayChannel]) -> int:
        body = {k: v for k, v in message.items() if k not in ("type", "topic")}
        sent = 0
        for channel in list(members.values()):
            if await channel.conn.send_message(channel.push(c.SYSTEM, body)):
                sent += 1
        return sent

    # upkeep ------------------------------------------------------------------------------

    async def _upkeep_loop(self) -> None:
        last_bridge = last_groups = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            try:
                now = time.monotonic()
                if now - last_groups >= GROUP_REFRESH:
                    last_groups = now
                    await self._rejoin_groups()
                for conn in list(self.connections):
                    if now - conn.last_seen > self.idle_timeout:
                        await conn.close_with_reason(c.CLOSE_NORMAL, "idle timeout")
                if self.bridge_patterns and now - last_bridge >= self.bridge_refresh:
                    last_bridge = now
                    for topic in list(self.topics):
                        if self.bridged(topic):
                            await self._bridge(topic, True)
            except Exception:
                logger.exception("gateway upkeep failed")
