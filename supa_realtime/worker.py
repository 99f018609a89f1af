"""The relay: Supabase Realtime → Channels groups, plus Django signals in this process.

Theory of operation
-------------------
One :class:`~supa_realtime.client.RealtimeClient` holds the upstream socket and joins one
channel per configured subscription. Every frame it decodes reaches :meth:`Worker._on_message`
(the client's raw hook), which does as little as possible on the receive path: it turns the
frame into a typed group message (:func:`supa_realtime.events.group_message`), appends it to
one ordered queue, and, only when someone listens, queues a signal event.

A single sender task drains that queue. It takes everything that piled up while its previous
Redis call was in flight, groups it by Channels group (keeping each group's order) and sends
each group's share as one batch (:class:`supa_realtime.layers.GroupSender`). At low rates a
batch is one message and adds no delay; under load batches grow and Redis round trips stay
few. Deliveries the channel layer drops (a member channel at capacity) are counted, and logged
at WARNING with the running total.

If the queue passes ``max_pending`` frames (Redis slower than Supabase for a long while),
the receive path waits for the sender to drain it, so the socket's TCP window pushes back on
the server instead of memory growing without bound.

Signals run in their own task (:meth:`Worker._signal_loop`) through ``Signal.asend_robust``,
so a slow or failing receiver never holds up the relay; a receiver that raises is logged with
its traceback. Its queue is bounded too (``max_signal_backlog``); events past the bound are
counted and logged at WARNING, never dropped silently.

After a reconnect, every relayed group gets a gap notice (:func:`supa_realtime.events.gap_message`)
before any newer event: it is queued when the socket reopens, before the channels rejoin.

Outbound, when the worker is given Redis (``from_settings`` always does):

* it first waits for the deployment's lease (:mod:`supa_realtime.lease`); a standby worker
  does not connect upstream at all, so with several workers exactly one relays (no echo,
  no duplicates) and the others take over within the lease's takeover bound;
* once active it runs an :class:`~supa_realtime.outbox.OutboxSender` beside the relay,
  which sends the broadcasts Django code queued, in order, with ``ack`` (relay channels
  join with ``{"self": false, "ack": true}`` so they can carry them too);
* every ``status_interval`` it writes a small status hash to Redis (read by
  ``manage.py realtime_worker --status``) and logs at WARNING any outbox entries trimmed
  before they were sent since the last report.

Presence mirror. With Redis, the Supabase-side presence of every relayed topic that has
presence (``presence_state`` and ``presence_diff`` frames) is written into the gateway's
presence store (:meth:`supa_realtime.presence.PresenceStore.replace_upstream` and
``apply_upstream_diff``), so browsers on Django see clients that talk to Supabase directly.
The receive path only appends the frame's group message to a bounded queue; one owned task
(:meth:`Worker._presence_loop`) writes to Redis. Each write sets a TTL
(``presence_ttl``) that the task refreshes every third of it, so the mirror of a worker
that died expires. A full queue or a failed write is counted and logged, never fatal.

Dynamic bridging (``bridge=True``). The active worker receives the gateway's interest
messages on the channel :data:`supa_realtime.gateway.hub.BRIDGE_CHANNEL` (one owned task
feeds them to another that acts), keeps them in :class:`supa_realtime.bridge.Interest`
(announcements expire after ``bridge_ttl``), joins a wanted topic upstream with
``{"self": false, "ack": true}`` and presence, and relays it like a configured subscription.
The channel is registered among the relay channels, so the outbox sends on it too. A topic
nobody wants (withdrawn or expired) is left after ``bridge_linger`` seconds. At most
``max_channels`` channels share the socket (Supabase allows 100): past that a join is
refused, logged at ERROR and counted in ``stats.bridge_refused``.

A lost lease (not renewed in time) stops the worker with
:class:`~supa_realtime.exceptions.LeaseLost`; on a clean stop it waits briefly for
in-flight acks, then releases the lease so a standby takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal as os_signal
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import events, signals
from .backoff import Backoff
from .bridge import Interest
from .channel import RealtimeChannel
from .client import RealtimeClient
from .conf import Subscription
from .exceptions import JoinError, JoinTimeout, LeaseLost, NotConnectedError, RemoteProtocolError
from .groups import group_for
from .layers import GroupSender
from .lease import Lease
from .outbox import OutboxKeys, OutboxSender
from .phoenix import constants as c
from .phoenix.message import Message
from .phoenix.presence import (
    PresenceJoin,
    PresenceLeave,
    PresenceState,
    parse_diff,
    parse_state,
    sync_diff,
    sync_state,
)
from .presence import PresenceStore

logger = logging.getLogger(__name__)

__all__ = ["Worker", "WorkerStats", "run_until_signalled"]

_PRESENCE_EVENTS: frozenset[str] = frozenset((c.PRESENCE_STATE, c.PRESENCE_DIFF))

_SIGNAL_FOR_EVENT: dict[str, tuple[Any, Callable[[Message], Any]]] = {
    c.BROADCAST: (signals.broadcast_received, events.BroadcastReceived.from_message),
    c.POSTGRES_CHANGES: (signals.postgres_change, events.PostgresChange.from_message),
    c.PRESENCE_STATE: (signals.presence_changed, events.PresenceChanged.from_message),
    c.PRESENCE_DIFF: (signals.presence_changed, events.PresenceChanged.from_message),
}


@dataclass
class WorkerStats:
    """Counters a running worker keeps (also logged when it stops)."""

    frames_relayed: int = 0
    batches_sent: int = 0
    deliveries_dropped: int = 0
    signals_sent: int = 0
    signals_dropped: int = 0
    receiver_errors: int = 0
    reconnects: int = 0
    gaps: int = 0
    backpressure_waits: int = 0
    presence_writes: int = 0
    presence_refreshes: int = 0
    presence_errors: int = 0
    presence_dropped: int = 0
    bridge_joins: int = 0
    bridge_leaves: int = 0
    bridge_refused: int = 0
    bridge_errors: int = 0


class Worker:
    """Relays the configured subscriptions into Channels groups.

    Args:
        url: the Supabase project URL (``https://<ref>.supabase.co``) or a Realtime URL.
        key: the server key used as ``apikey``. Never logged.
        subscriptions: what to join and relay (see :class:`supa_realtime.conf.Subscription`).
        layer: the channel layer to relay into.
        vsn: serializer version of the upstream socket.
        heartbeat_interval: seconds between heartbeats.
        push_timeout: seconds to wait for a join or push reply.
        reconnect: the reconnect backoff policy.
        max_pending: frames queued for Redis before the receive path waits.
        max_signal_backlog: signal events queued before new ones are counted and dropped.
        redis: an asyncio Redis client for the lease, the outbox and the status; ``None``
            runs the relay alone (no lease, no outbox).
        keys: the Redis keys (default prefix ``supa_realtime``).
        lease_ttl: seconds the lease lives without renewal (see :mod:`supa_realtime.lease`).
        status_interval: seconds between status updates.
        max_in_flight: outbox sends waiting for their ack at most.
        linger: seconds an outbox-only channel stays joined after its last send.
        presence_ttl: seconds the presence mirror lives in Redis unless refreshed (it is
            refreshed every third of that); ``from_settings`` uses ``GATEWAY["PRESENCE_TTL"]``.
        max_presence_backlog: presence frames queued for Redis before new ones are dropped
            (counted and logged).
        bridge: receive the gateway's interest messages and join topics on demand.
        bridge_ttl: seconds an interest announcement lasts unless repeated.
        bridge_linger: seconds a bridged topic stays joined once nobody wants it.
        max_channels: channels joined on the socket at most (Supabase allows 100).
    """

    def __init__(
        self,
        *,
        url: str,
        key: str,
        subscriptions: Sequence[Subscription],
        layer: Any,
        vsn: str = c.VSN_2,
        heartbeat_interval: float = c.HEARTBEAT_INTERVAL_S,
        push_timeout: float = c.PUSH_TIMEOUT_S,
        reconnect: Backoff | None = None,
        max_pending: int = 100_000,
        max_signal_backlog: int = 10_000,
        redis: Any = None,
        keys: OutboxKeys | None = None,
        lease_ttl: float = 10.0,
        status_interval: float = 2.0,
        max_in_flight: int = 1000,
        linger: float = 30.0,
        presence_ttl: float = 30.0,
        max_presence_backlog: int = 10_000,
        bridge: bool = False,
        bridge_ttl: float = 30.0,
        bridge_linger: float = 30.0,
        max_channels: int = c.MAX_CHANNELS_PER_CLIENT,
    ) -> None:
        if layer is None:
            raise ValueError("the worker needs a channel layer (CHANNEL_LAYERS is not set)")
        self.subscriptions = tuple(subscriptions)
        self.stats = WorkerStats()
        self._upstream_presence: dict[str, PresenceState] = {}
        self._layer = layer
        self._sender = GroupSender(layer)
        self._by_topic = {s.full_topic: s for s in self.subscriptions}
        self._groups = {topic: group_for(topic) for topic in self._by_topic}
        self._pending: deque[tuple[str, dict[str, Any]]] = deque()
        self._max_pending = max_pending
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._signal_queue: asyncio.Queue[tuple[Any, Any]] = asyncio.Queue(max_signal_backlog)
        self._lost_at: float | None = None
        self._opened_once = False
        self._stopping = False
        #: Set once every subscription has been joined (or handed to background retries).
        self.ready = asyncio.Event()
        self.redis = redis
        self.keys = keys or OutboxKeys()
        self.lease = Lease(redis, self.keys.lease, lease_ttl) if redis is not None else None
        self._status_interval = status_interval
        self._relay_channels: dict[str, tuple[RealtimeChannel, bool]] = {}
        self._push_timeout = push_timeout
        self._client = RealtimeClient(
            url,
            key,
            vsn=vsn,
            heartbeat_interval=heartbeat_interval,
            timeout=push_timeout,
            reconnect_backoff=reconnect or Backoff(),
        )
        self._client.on_open(self._on_open)
        self._client.on_close(self._on_close)
        self._client.on_message(self._on_message)
        self.outbox: OutboxSender | None = None
        if redis is not None:
            self.outbox = OutboxSender(
                redis,
                self.keys,
                self._client,
                self._relay_channels,
                max_in_flight=max_in_flight,
                linger=linger,
                push_timeout=push_timeout,
                max_channels=max(1, c.MAX_CHANNELS_PER_CLIENT - 10 - len(self.subscriptions)),
            )
        self._dropped_seen: int | None = None
        self.last_error = ""
        self.presence: PresenceStore | None = None
        self._presence_ttl = presence_ttl
        self._presence_queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(
            max_presence_backlog
        )
        if redis is not None:
            self.presence = PresenceStore(redis, None, prefix=self.keys.prefix)
        self._bridge = bridge
        self.interest = Interest(ttl=bridge_ttl, linger=bridge_linger)
        self._bridged: dict[str, RealtimeChannel] = {}
        self._refused: set[str] = set()
        self._max_channels = max_channels
        self._bridge_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(10_000)

    @classmethod
    def from_settings(cls, **overrides: Any) -> Worker:
        """A worker configured from ``settings.SUPA_REALTIME`` (keyword arguments win)."""
        from channels.layers import get_channel_layer

        from .conf import settings as realtime_settings
        from .exceptions import ConfigurationError

        url = overrides.pop("url", None) or realtime_settings.URL
        key = overrides.pop("key", None) or realtime_settings.KEY
        if not url:
            raise ConfigurationError(
                "set SUPA_REALTIME['URL'] (or the SUPABASE_URL environment variable) to your "
                "Supabase project URL"
            )
        if not key:
            raise ConfigurationError(
                "set SUPA_REALTIME['KEY'] (or the SUPABASE_KEY environment variable) to your "
                "Supabase server key"
            )
        reconnect = realtime_settings.RECONNECT
        broadcast = realtime_settings.BROADCAST
        worker = realtime_settings.WORKER
        gateway = realtime_settings.GATEWAY
        kwargs: dict[str, Any] = {
            "subscriptions": realtime_settings.SUBSCRIPTIONS,
            "layer": get_channel_layer(realtime_settings.CHANNEL_LAYER),
            "vsn": realtime_settings.VSN,
            "heartbeat_interval": realtime_settings.HEARTBEAT_INTERVAL,
            "push_timeout": realtime_settings.PUSH_TIMEOUT,
            "reconnect": Backoff(
                initial=reconnect.initial_delay,
                max_delay=reconnect.max_delay,
                max_retries=reconnect.max_retries,
            ),
            "keys": OutboxKeys(realtime_settings.REDIS_PREFIX),
            "lease_ttl": worker.lease_ttl,
            "status_interval": worker.status_interval,
            "max_in_flight": broadcast.max_in_flight,
            "linger": broadcast.linger,
            "bridge": bool(gateway.bridge),
            "bridge_ttl": 3 * gateway.bridge_refresh,
            "bridge_linger": gateway.bridge_linger,
            # The mirror of a dead worker goes within the bound of a dead ASGI process's.
            "presence_ttl": gateway.presence_ttl,
        }
        if "redis" not in overrides:
            import redis.asyncio

            kwargs["redis"] = redis.asyncio.Redis.from_url(realtime_settings.REDIS_URL)
        kwargs.update(overrides)
        return cls(url=url, key=key, **kwargs)

    # -- running ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, join every subscription and relay until ``stop`` is set; then leave the
        channels, deliver what is still queued and close.

        With Redis, wait on standby for the lease first (returning if ``stop`` is set
        meanwhile), and send the outbox while active.

        Raises:
            LeaseLost: the lease could not be renewed in time; the worker stopped.
        """
        if self.lease is not None:
            await self._publish_status(connected=False)
            if not await self.lease.wait(stop):
                return
        tasks = [
            asyncio.create_task(self._send_loop(), name="supa_realtime.worker.send"),
            asyncio.create_task(self._signal_loop(), name="supa_realtime.worker.signals"),
        ]
        outbound: list[asyncio.Task[None]] = []
        try:
            if self.lease is not None:
                outbound.append(
                    asyncio.create_task(self.lease.keep(), name="supa_realtime.worker.lease")
                )
                outbound.append(
                    asyncio.create_task(self._status_loop(), name="supa_realtime.worker.status")
                )
            await self._client.connect(retry=self.lease is not None)
            for sub in self.subscriptions:
                await self._join(sub)
            if self.outbox is not None:
                outbound.append(
                    asyncio.create_task(self.outbox.run(), name="supa_realtime.worker.outbox")
                )
            if self.presence is not None:
                outbound.append(
                    asyncio.create_task(self._presence_loop(), name="supa_realtime.worker.presence")
                )
            if self._bridge:
                outbound.append(
                    asyncio.create_task(
                        self._bridge_receive(), name="supa_realtime.worker.bridge.receive"
                    )
                )
                outbound.append(
                    asyncio.create_task(self._bridge_loop(), name="supa_realtime.worker.bridge")
                )
            self.ready.set()
            await self._until_stopped(stop, outbound)
        finally:
            self._stopping = True
            await self._stop_outbound(outbound)
            await self._shutdown(tasks)
            await self._clear_presence_mirror()
            if self.lease is not None:
                await self.lease.release()
                await self._publish_status(connected=False)

    async def _until_stopped(self, stop: asyncio.Event, outbound: list[asyncio.Task[None]]) -> None:
        stopper = asyncio.create_task(stop.wait(), name="supa_realtime.worker.stop")
        try:
            done, _ = await asyncio.wait({stopper, *outbound}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
        for task in done:
            if task is not stopper:
                exc = task.exception()
                if isinstance(exc, LeaseLost):
                    logger.error("%s", exc)
                if exc is not None:
                    raise exc
                raise RuntimeError(f"{task.get_name()} ended unexpectedly")

    async def _stop_outbound(self, outbound: list[asyncio.Task[None]]) -> None:
        if self.outbox is not None and self._client.is_connected:
            # Let what is in flight be acknowledged, so it is not sent again by the next worker.
            await self.outbox.drain(min(self._push_timeout, 5.0))
        await _cancel_and_wait(outbound)
        for task in outbound:
            result = task.exception() if task.done() and not task.cancelled() else None
            if isinstance(result, Exception) and not isinstance(result, LeaseLost):
                logger.error("outbound task failed", exc_info=result)

    async def _status_loop(self) -> None:
        while True:
            await self._publish_status(connected=self._client.is_connected)
            await self._report_dropped()
            await asyncio.sleep(self._status_interval)

    async def _publish_status(self, *, connected: bool) -> None:
        from redis.exceptions import RedisError

        if self.redis is None or self.lease is None:
            return
        outbox = self.outbox
        fields = {
            "holder": self.lease.holder,
            "connected": "1" if connected else "0",
            "updated_at": repr(time.time()),
            "in_flight": outbox.in_flight if outbox is not None else 0,
            "sent": outbox.stats.sent if outbox is not None else 0,
            "last_error": (outbox.stats.last_error if outbox is not None else "")
            or self.last_error,
            "frames_relayed": self.stats.frames_relayed,
            "reconnects": self.stats.reconnects,
        }
        try:
            if connected or await self.lease.holder_now() in (None, self.lease.holder):
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.hset(self.keys.status, mapping=fields)
                    pipe.pexpire(self.keys.status, int(max(3 * self._status_interval, 10) * 1000))
                    await pipe.execute()
        except (OSError, RedisError) as exc:
            logger.warning("could not publish the worker status (%s)", exc)

    async def _report_dropped(self) -> None:
        """Log at WARNING the outbox entries trimmed unsent since the last report."""
        from redis.exceptions import RedisError

        if self.redis is None:
            return
        keys = self.keys
        try:
            dropped_raw, reported_raw = await self.redis.mget(keys.dropped, keys.dropped_reported)
            dropped, reported = int(dropped_raw or 0), int(reported_raw or 0)
            if dropped > reported:
                logger.warning(
                    "%d outbox broadcasts were dropped before they were sent (older than the "
                    "retention bound, SUPA_REALTIME['BROADCAST']['RETENTION_SECONDS'] / "
                    "['RETENTION_MESSAGES']); %d dropped in all",
                    dropped - reported,
                    dropped,
                )
                await self.redis.set(keys.dropped_reported, dropped)
        except (OSError, RedisError) as exc:
            logger.warning("could not read the outbox drop counter (%s)", exc)

    async def _join(self, sub: Subscription) -> None:
        # self: false — what this worker sends must never come back to it and be relayed twice.
        # ack: true — the outbox sends on this channel too when the topic is also a target.
        channel = self._client.channel(
            sub.full_topic,
            broadcast={"self": False, "ack": True},
            presence={"enabled": sub.presence},
            private=sub.private,
        )
        for binding in sub.postgres_changes:
            # Frames are relayed from the raw message hook; the binding only has to be joined.
            channel.on_postgres_changes(
                binding.event,
                _ignore,
                schema=binding.schema,
                table=binding.table,
                filter=binding.filter,
            )
        group = self._groups[sub.full_topic]
        self._relay_channels[sub.full_topic] = (channel, sub.private)
        try:
            await channel.subscribe()
        except (JoinError, JoinTimeout) as exc:
            # The channel keeps retrying on the client's rejoin schedule.
            logger.error("%s; retrying in the background (group %s)", exc, group)
            return
        logger.info("relaying %s to group %s", sub.full_topic, group)

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        try:
            await asyncio.wait_for(self._client.remove_all_channels(), timeout=5)
        except (TimeoutError, OSError) as exc:
            logger.warning("could not leave every channel before closing: %s", exc)
        await self._client.close()
        # Deliver what was received before the close, then stop the helpers.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wait_drained(), timeout=5)
        await _cancel_and_wait(tasks)
        s = self.stats
        logger.info(
            "worker stopped: %d frames relayed in %d batches, %d deliveries dropped, "
            "%d reconnects, %d signal events dropped",
            s.frames_relayed,
            s.batches_sent,
            s.deliveries_dropped,
            s.reconnects,
            s.signals_dropped,
        )

    async def _wait_drained(self) -> None:
        while self._pending:
            self._drained.clear()
            self._wake.set()
            await self._drained.wait()

    # -- client hooks ----------------------------------------------------------------------

    def _on_open(self) -> None:
        if self._opened_once and self._lost_at is not None:
            now = time.time()
            self.stats.reconnects += 1
            self.stats.gaps += 1
            for topic, group in self._groups.items():
                self._pending.append((group, events.gap_message(topic, self._lost_at, now)))
            self._wake.set()
        self._opened_once = True
        self._lost_at = None

    def _on_close(self, code: int | None, reason: str) -> None:
        if not self._stopping and self._lost_at is None:
            self._lost_at = time.time()

    def _on_message(self, msg: Message) -> Awaitable[None] | None:
        group = self._groups.get(msg.topic)
        if group is None:
            return None
        # Only channel pushes carry a join_ref; one from an earlier join is stale.
        if msg.join_ref is not None and not self._client.is_current(msg):
            return None
        message = events.group_message(msg)
        if message is None:
            return None
        if msg.event == c.BROADCAST:
            sub = self._by_topic[msg.topic]
            if sub.broadcast != "*" and not sub.wants_broadcast(message.get("event", "")):
                return None
        self._pending.append((group, message))
        self._wake.set()
        if msg.event in _PRESENCE_EVENTS:
            self._follow_presence(msg, group)
            if self.presence is not None:
                self._queue_presence(msg.topic, message)
        hook = _SIGNAL_FOR_EVENT.get(msg.event)
        if hook is not None and hook[0].receivers:
            self._queue_signal(hook[0], hook[1], msg)
        if len(self._pending) >= self._max_pending:
            self.stats.backpressure_waits += 1
            return self._wait_below_limit()
        return None

    async def _wait_below_limit(self) -> None:
        while len(self._pending) >= self._max_pending:
            self._drained.clear()
            await self._drained.wait()

    def _queue_signal(self, sig: Any, build: Callable[[Message], Any], msg: Message) -> None:
        try:
            self._signal_queue.put_nowait((sig, build(msg)))
        except asyncio.QueueFull:
            self.stats.signals_dropped += 1
            if self.stats.signals_dropped in (1, 10, 100) or self.stats.signals_dropped % 1000 == 0:
                logger.warning(
                    "signal receivers are too slow: %d events dropped so far (backlog %d)",
                    self.stats.signals_dropped,
                    self._signal_queue.maxsize,
                )

    def _follow_presence(self, msg: Message, group: str) -> None:
        """Keep each topic's upstream presence; relay what a ``presence_state`` changed.

        Consumers that joined before a ``presence_state`` (the worker's first join of a
        bridged topic, a rejoin after a reconnect) would otherwise never learn who came or
        went: the state is followed by a ``presence_diff`` of the difference, in order.
        Applying a diff whose joins are already known, or whose leaves are gone, changes
        nothing (Phoenix's sync), so consumers that did use the state lose nothing.
        """
        known = self._upstream_presence.get(msg.topic, {})
        try:
            if msg.event == c.PRESENCE_DIFF:
                self._upstream_presence[msg.topic] = sync_diff(known, parse_diff(msg.payload)).state
                return
            outcome = sync_state(known, parse_state(msg.payload))
        except RemoteProtocolError as exc:
            logger.warning("%s: presence frame not understood: %s", msg.topic, exc)
            return
        self._upstream_presence[msg.topic] = outcome.state
        joins = {e.key: {"metas": e.new} for e in outcome.events if isinstance(e, PresenceJoin)}
        leaves = {e.key: {"metas": e.left} for e in outcome.events if isinstance(e, PresenceLeave)}
        if joins or leaves:
            diff = {"type": events.PRESENCE_DIFF, "topic": msg.topic, "joins": joins}
            diff["leaves"] = leaves
            self._pending.append((group, diff))

    def _queue_presence(self, topic: str, message: dict[str, Any]) -> None:
        try:
            self._presence_queue.put_nowait((topic, message))
        except asyncio.QueueFull:
            self.stats.presence_dropped += 1
            n = self.stats.presence_dropped
            if n in (1, 10, 100) or n % 1000 == 0:
                logger.warning(
                    "presence mirror: Redis is too slow, %d presence frames dropped so far "
                    "(backlog %d)",
                    n,
                    self._presence_queue.maxsize,
                )

    # -- presence mirror -------------------------------------------------------------------

    async def _presence_loop(self) -> None:
        """Write the Supabase-side presence the relay observes into the presence store."""
        store = self.presence
        assert store is not None
        queue = self._presence_queue
        ttl = self._presence_ttl
        mirrored: set[str] = set()
        next_refresh = time.monotonic() + ttl / 3
        while True:
            try:
                topic, message = await asyncio.wait_for(
                    queue.get(), max(0.0, next_refresh - time.monotonic())
                )
            except TimeoutError:
                next_refresh = time.monotonic() + ttl / 3
                await self._refresh_presence_mirror(mirrored)
                continue
            try:
                if message["type"] == events.PRESENCE_STATE:
                    await store.replace_upstream(topic, message["state"], ttl=ttl)
                else:
                    await store.apply_upstream_diff(
                        topic, message["joins"], message["leaves"], ttl=ttl
                    )
            except Exception as exc:  # noqa: BLE001 - the relay must go on; logged and counted
                self.stats.presence_errors += 1
                logger.error(
                    "presence mirror of %s not written (%s); %d failures so far",
                    topic,
                    exc,
                    self.stats.presence_errors,
                )
                continue
            mirrored.add(topic)
            self.stats.presence_writes += 1

    async def _refresh_presence_mirror(self, topics: set[str]) -> None:
        store = self.presence
        if store is None or not topics:
            return
        try:
            async with store.redis.pipeline(transaction=False) as pipe:
                for topic in topics:
                    pipe.pexpire(store.keys.upstream(topic), int(self._presence_ttl * 1000))
                await pipe.execute()
            self.stats.presence_refreshes += 1
        except Exception as exc:  # noqa: BLE001 - retried at the next refresh
            self.stats.presence_errors += 1
            logger.error("presence mirror TTL not refreshed (%s)", exc)

    async def _clear_presence_mirror(self) -> None:
        """On a clean stop, remove the mirror (the next active worker writes its own)."""
        store = self.presence
        if store is None:
            return
        keys = [store.keys.upstream(t) for t in self._groups]
        if not keys:
            return
        try:
            await store.redis.delete(*keys)
        except Exception as exc:  # noqa: BLE001 - it expires anyway
            logger.warning("presence mirror not removed on stop (%s); it expires", exc)

    # -- dynamic bridging ------------------------------------------------------------------

    async def _bridge_receive(self) -> None:
        """Receive the gateway's interest messages and hand them to :meth:`_bridge_loop`."""
        from .gateway.hub import BRIDGE_CHANNEL, BRIDGE_TYPE

        while True:
            try:
                message = await self._layer.receive(BRIDGE_CHANNEL)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis restarting: retry, never stop
                self.stats.bridge_errors += 1
                logger.error("bridge: receiving interest failed (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)
                continue
            if not isinstance(message, dict) or message.get("type") != BRIDGE_TYPE:
                logger.warning("bridge: ignoring an unexpected message %r", message)
                continue
            try:
                self._bridge_queue.put_nowait(message)
            except asyncio.QueueFull:
                self.stats.bridge_errors += 1
                logger.error("bridge: interest backlog full; %r dropped", message.get("topic"))

    async def _bridge_loop(self) -> None:
        """Join wanted topics, leave unwanted ones after the linger."""
        interest = self.interest
        tick = max(0.05, min(interest.linger, interest.ttl) / 4)
        while True:
            message: dict[str, Any] | None = None
            with contextlib.suppress(TimeoutError):
                message = await asyncio.wait_for(self._bridge_queue.get(), tick)
            try:
                if message is not None:
                    await self._bridge_update(message)
                for topic in interest.due(list(self._bridged), time.monotonic()):
                    await self._bridge_leave(topic)
            except Exception:  # one bad step must not end bridging
                self.stats.bridge_errors += 1
                logger.exception("bridge: handling %r failed; bridging goes on", message)

    async def _bridge_update(self, message: dict[str, Any]) -> None:
        interest = self.interest
        topic = Subscription(topic=str(message["topic"])).full_topic
        if topic in self._by_topic and topic not in self._bridged:
            return  # a configured subscription: always relayed
        wanted = message.get("interest") is True
        interest.update(topic, str(message.get("process")), wanted, time.monotonic())
        if wanted and topic not in self._bridged:
            await self._bridge_join(topic)
        elif not wanted and not interest.interested(topic, time.monotonic()):
            self._refused.discard(topic)

    async def _bridge_join(self, topic: str) -> None:
        joined = len(self._client.get_channels())
        if joined >= self._max_channels:
            self.stats.bridge_refused += 1
            if topic not in self._refused:
                self._refused.add(topic)
                logger.error(
                    "bridge: not joining %s: the upstream socket already has %d channels, the "
                    "limit is %d (Supabase allows %d per connection); %d refused so far",
                    topic,
                    joined,
                    self._max_channels,
                    c.MAX_CHANNELS_PER_CLIENT,
                    self.stats.bridge_refused,
                )
            return
        self._refused.discard(topic)
        if self.outbox is not None:
            # An outbox channel of this topic becomes the relay channel (one join per topic).
            self.outbox._on_demand.pop(topic, None)
        channel = self._client.channel(
            topic, broadcast={"self": False, "ack": True}, presence={"enabled": True}
        )
        sub = Subscription(topic=topic, presence=True)
        self._by_topic[topic] = sub
        self._groups[topic] = group_for(topic)
        self._bridged[topic] = channel
        self._relay_channels[topic] = (channel, False)
        try:
            if not channel.is_joined:
                await channel.subscribe()
        except (JoinError, JoinTimeout, NotConnectedError) as exc:
            self.stats.bridge_errors += 1
            logger.error(
                "bridge: joining %s failed (%s); retrying on the next interest", topic, exc
            )
            await self._bridge_leave(topic, log=False)
            return
        self.stats.bridge_joins += 1
        logger.info("bridge: joined %s on demand, relaying to group %s", topic, group_for(topic))

    async def _bridge_leave(self, topic: str, *, log: bool = True) -> None:
        channel = self._bridged.pop(topic, None)
        self._by_topic.pop(topic, None)
        self._groups.pop(topic, None)
        self._relay_channels.pop(topic, None)
        self.interest.forget(topic)
        if channel is None:
            return
        try:
            await self._client.remove_channel(channel)
        except NotConnectedError as exc:
            logger.debug("bridge: leaving %s: %s", topic, exc)
        if self.presence is not None:
            try:
                await self.presence.replace_upstream(topic, {})
            except Exception as exc:  # noqa: BLE001 - it expires anyway
                logger.warning("presence mirror of %s not removed (%s); it expires", topic, exc)
        if log:
            self.stats.bridge_leaves += 1
            logger.info("bridge: left %s (no local interest)", topic)

    # -- sending ---------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        pending = self._pending
        while True:
            await self._wake.wait()
            self._wake.clear()
            while pending:
                by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for _ in range(len(pending)):
                    group, message = pending.popleft()
                    by_group[group].append(message)
                for group, messages in by_group.items():
                    await self._send(group, messages)
            self._drained.set()

    async def _send(self, group: str, messages: list[dict[str, Any]]) -> None:
        try:
            dropped = await self._sender.send(group, messages)
        except (OSError, ConnectionError) as exc:
            # Redis is unreachable: these messages are lost for this group. Count and say so.
            dropped = len(messages)
            logger.error("channel layer send to %s failed (%s); %d lost", group, exc, dropped)
        stats = self.stats
        stats.frames_relayed += len(messages)
        stats.batches_sent += 1
        if dropped:
            stats.deliveries_dropped += dropped
            logger.warning(
                "%d deliveries to group %s dropped: a member channel is at its channel layer "
                "capacity (raise CHANNEL_LAYERS capacity or read faster); %d dropped so far",
                dropped,
                group,
                stats.deliveries_dropped,
            )

    async def _signal_loop(self) -> None:
        queue = self._signal_queue
        while True:
            sig, event = await queue.get()
            responses = await sig.asend_robust(sender=Worker, event=event)
            self.stats.signals_sent += 1
            for receiver, result in responses:
                if isinstance(result, Exception):
                    self.stats.receiver_errors += 1
                    logger.error(
                        "signal receiver %r raised while handling %r; the relay goes on",
                        receiver,
                        event,
                        exc_info=result,
                    )


async def _cancel_and_wait(tasks: Sequence[asyncio.Task[Any]], attempts: int = 5) -> None:
    """Cancel ``tasks`` and wait until each has ended.

    A cancellation can be swallowed on its way through code the task awaits (a signal's
    sync receivers run through ``sync_to_async``); the task then carries on to its next
    ``await``. So it is cancelled again, a bounded number of times, and a task that still
    runs is named in an ERROR line instead of hanging the shutdown.
    """
    pending = [task for task in tasks if not task.done()]
    for _ in range(attempts):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, still = await asyncio.wait(pending, timeout=1.0)
        pending = list(still)
    if pending:
        logger.error(
            "tasks did not stop when cancelled and are left running: %s",
            ", ".join(task.get_name() for task in pending),
        )


def _ignore(change: Any) -> None:
    return None


async def run_until_signalled(worker: Worker) -> None:
    """Run ``worker`` until SIGTERM or SIGINT, then stop it cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (os_signal.SIGTERM, os_signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await worker.run(stop)
    finally:
        for sig in (os_signal.SIGTERM, os_signal.SIGINT):
            loop.remove_signal_handler(sig)
