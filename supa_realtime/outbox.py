"""The outbox: broadcasts waiting in a Redis Stream until Supabase Realtime acknowledged them.

Theory of operation
-------------------
Producer side. ``broadcast()`` appends one entry per call to the stream ``<prefix>:outbox``
with one Lua script (:data:`APPEND_LUA`, one round trip). The script creates the consumer
group on first use (reading from id ``0``, so nothing appended before the first worker ran
is skipped), adds the entry, and trims the stream: an entry is removed only once it is
older than ``retention_seconds`` *and* at least ``retention_messages`` newer entries exist.
Each removed entry that no worker has read yet (its id is above the group's last-delivered
id) is counted in ``<prefix>:outbox:dropped``. Nothing is dropped without being counted.

Worker side. Only the active worker (the lease holder, :mod:`supa_realtime.lease`) runs an
:class:`OutboxSender`. It is the group's only consumer (a fixed consumer name: one worker
at a time), so the group's pending entries list (PEL) is exactly "read but not yet
acknowledged by Supabase". A session:

1. re-sends every PEL entry, in id order (a previous session or worker may have sent them
   without seeing the ack), then
2. reads new entries (``XREADGROUP >``) while fewer than ``max_in_flight`` are unanswered,
   and pushes each as a ``broadcast`` on the topic's channel, joined on demand with
   ``{"self": false, "ack": true}`` (the relay channel is reused when the topic is also a
   subscription). Sends go out one by one from one task, so the socket carries them in
   stream order;
3. a second task awaits the acks in the same order and ``XACK``s each run of answered
   entries in one call (and adds them to ``<prefix>:outbox:sent``).

A missing ack within the push timeout, or the socket closing, ends the session; the next
one starts once the socket is back, at step 1. An entry whose ack was lost on the way is
therefore sent again: delivery to Supabase is at-least-once, and exactly once whenever acks
arrive (normal operation). An entry the server refuses (``payload_size_exceeded``, or a join
it refuses, e.g. a private topic RLS does not allow) is logged at ERROR, counted as failed
and acknowledged, so one bad entry cannot stall the stream.

On-demand channels are left after ``linger`` seconds without a send; at most
``max_channels`` are kept (Supabase allows 100 per socket), the least recently used idle one
is left first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from redis.exceptions import RedisError

from .channel import RealtimeChannel, _Push
from .client import RealtimeClient
from .exceptions import JoinError, JoinTimeout, NotConnectedError, PushError
from .phoenix import constants as c
from .phoenix.message import Message

__all__ = [
    "APPEND_LUA",
    "APPEND_SCRIPT_BODY",
    "GROUP",
    "Entry",
    "OutboxKeys",
    "OutboxSender",
    "SenderStats",
    "append_args",
    "read_status",
]

logger = logging.getLogger(__name__)

GROUP: Final = "supa_realtime"
CONSUMER: Final = "active"
#: Most entries one append trims (the rest go on later appends).
TRIM_BATCH: Final = 1000

# KEYS: stream, dropped counter. ARGV: group, max age (ms), max length, trim batch, the entry's
# header (a JSON array: topic, event, private, created) and its payload (JSON). The entry is
# one field, header + "\n" + payload (JSON text never holds a raw newline): one field parses
# several times faster than five on the worker's side. Returns the new entry id. (The body
# is also the first part of broadcast.APPEND_AND_GROUP_SEND_LUA, as a function.)
APPEND_SCRIPT_BODY: Final = """
local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then
    redis.call('XGROUP', 'CREATE', stream, ARGV[1], '0', 'MKSTREAM')
end
local id = redis.call('XADD', stream, '*', 'm', ARGV[5] .. string.char(10) .. ARGV[6])
local len = redis.call('XLEN', stream)
local excess = len - tonumber(ARGV[3])
if excess <= 0 then
    return id
end
local now = redis.call('TIME')
local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[2])
local old = redis.call('XRANGE', stream, '-', '(' .. string.format('%d', cutoff) .. '-0',
                       'COUNT', math.min(excess, tonumber(ARGV[4])))
local n = #old
if n == 0 then
    return id
end
local function split(entry_id)
    local dash = string.find(entry_id, '-', 1, true)
    return tonumber(string.sub(entry_id, 1, dash - 1)), tonumber(string.sub(entry_id, dash + 1))
end
local delivered_ms, delivered_seq = -1, -1
local groups = redis.call('XINFO', 'GROUPS', stream)
for _, info in ipairs(groups) do
    local name, last = nil, nil
    for i = 1, #info, 2 do
        if info[i] == 'name' then name = info[i + 1] end
        if info[i] == 'last-delivered-id' then last = info[i + 1] end
    end
    if name == ARGV[1] and last then
        delivered_ms, delivered_seq = split(last)
    end
end
local unsent = 0
for i = 1, n do
    local ms, seq = split(old[i][1])
    if ms > delivered_ms or (ms == delivered_ms and seq > delivered_seq) then
        unsent = unsent + 1
    end
end
redis.call('XTRIM', stream, 'MAXLEN', len - n)
if unsent > 0 then
    redis.call('INCRBY', KEYS[2], unsent)
end
return id
"""
APPEND_LUA: Final = APPEND_SCRIPT_BODY


@dataclass(frozen=True, slots=True)
class OutboxKeys:
    """The Redis keys of one deployment, all under ``prefix``."""

    prefix: str = "supa_realtime"

    @property
    def stream(self) -> str:
        return f"{self.prefix}:outbox"

    @property
    def dropped(self) -> str:
        """Entries trimmed (or found trimmed) before they were sent."""
        return f"{self.prefix}:outbox:dropped"

    @property
    def dropped_reported(self) -> str:
        """How many of ``dropped`` a worker has already logged."""
        return f"{self.prefix}:outbox:dropped:reported"

    @property
    def sent(self) -> str:
        """Entries acknowledged by Supabase."""
        return f"{self.prefix}:outbox:sent"

    @property
    def failed(self) -> str:
        """Entries Supabase refused (logged at ERROR)."""
        return f"{self.prefix}:outbox:failed"

    @property
    def lease(self) -> str:
        return f"{self.prefix}:worker:lease"

    @property
    def status(self) -> str:
        return f"{self.prefix}:worker:status"


def append_args(
    topic: str,
    event: str,
    data: bytes,
    private: bool,
    *,
    retention_seconds: float,
    retention_messages: int,
) -> list[Any]:
    """The ``ARGV`` of :data:`APPEND_LUA` for one broadcast (``data``: the JSON payload)."""
    return [
        GROUP,
        int(retention_seconds * 1000),
        retention_messages,
        TRIM_BATCH,
        orjson.dumps([topic, event, private, time.time()]),
        data,
    ]


@dataclass(frozen=True, slots=True)
class Entry:
    """One outbox entry, as the worker reads it."""

    id: str
    topic: str
    event: str
    payload: bytes
    private: bool
    created: float

    @classmethod
    def from_fields(cls, entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> Entry:
        head, _, payload = fields[b"m"].partition(b"\n")
        topic, event, private, created = orjson.loads(head)
        return cls(
            id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            topic=topic,
            event=event,
            payload=payload,
            private=private is True,
            created=float(created),
        )


# -- worker side ---------------------------------------------------------------------------


@dataclass
class SenderStats:
    """Counters of one :class:`OutboxSender`."""

    sent: int = 0
    resent: int = 0
    failed: int = 0
    dropped_found: int = 0
    sessions: int = 0
    last_error: str = ""


class _Retry(Exception):
    """End the session; start a new one (from the pending entries) when connected."""


@dataclass(slots=True)
class _OnDemand:
    channel: RealtimeChannel
    private: bool
    last_used: float
    in_flight: int = 0


@dataclass(slots=True)
class _InFlight:
    id: str
    future: asyncio.Future[Message] | None
    push: _Push | None
    channel: RealtimeChannel | None
    slot: _OnDemand | None = None
    failed: bool = False
    resent: bool = field(default=False)


class OutboxSender:
    """Sends outbox entries over ``client``'s socket, in order, and acknowledges them.

    Args:
        redis: an asyncio Redis client (``redis.asyncio.Redis``) of the outbox.
        keys: the deployment's keys.
        client: the worker's upstream client.
        relay_channels: topic → (channel, private) of the worker's own subscriptions.
        max_in_flight: sends waiting for their ack at most.
        linger: seconds an on-demand channel stays joined after its last send.
        push_timeout: seconds to wait for a join or an ack.
        max_channels: on-demand channels kept joined at most.
    """

    def __init__(
        self,
        redis: Any,
        keys: OutboxKeys,
        client: RealtimeClient,
        relay_channels: Mapping[str, tuple[RealtimeChannel, bool]],
        *,
        max_in_flight: int = 1000,
        linger: float = 30.0,
        push_timeout: float = c.PUSH_TIMEOUT_S,
        max_channels: int = 90,
        read_count: int = 500,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.stats = SenderStats()
        self._client = client
        self._relay = relay_channels
        self._max_in_flight = max_in_flight
        self._linger = linger
        self._timeout = push_timeout
        self._max_channels = max_channels
        self._read_count = read_count
        self._on_demand: dict[str, _OnDemand] = {}
        self._in_flight: deque[_InFlight] = deque()
        self._changed = asyncio.Event()
        self._draining = False
        self._binary = client.vsn == c.VSN_2

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group if they do not exist yet."""
        from redis.exceptions import ResponseError

        try:
            await self.redis.xgroup_create(self.keys.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        """Send until cancelled (or, after :meth:`drain`, until nothing is in flight)."""
        await self.ensure_group()
        janitor = asyncio.create_task(self._janitor(), name="supa_realtime.outbox.linger")
        try:
            while not self._draining:
                await self._wait_connected()
                self.stats.sessions += 1
                try:
                    await self._session()
                except _Retry as exc:
                    self.stats.last_error = str(exc)
                    logger.warning("outbox: %s; re-sending unacknowledged entries", exc)
                except (OSError, RedisError) as exc:
                    # Redis restarting or unreachable: what was read stays pending there.
                    self.stats.last_error = f"Redis: {exc}"
                    logger.warning("outbox: Redis failed (%s); retrying in 1 s", exc)
                    await asyncio.sleep(1.0)
                finally:
                    self._abandon()
        finally:
            janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await janitor

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a bounded shutdown step
        """Stop reading new entries and wait (at most ``timeout`` s) for in-flight acks."""
        self._draining = True
        self._changed.set()
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(0.01)

    async def _wait_connected(self) -> None:
        # The client has no "connected" event to wait on; poll its state.
        while not self._client.is_connected:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    # -- one session -----------------------------------------------------------------------

    async def _session(self) -> None:
        sender = asyncio.create_task(self._send_all(), name="supa_realtime.outbox.send")
        acker = asyncio.create_task(self._ack_all(), name="supa_realtime.outbox.ack")
        try:
            done, _ = await asyncio.wait({sender, acker}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises _Retry (or a bug)
            if sender in done and self._draining:
                await acker
        finally:
            for task in (sender, acker):
                task.cancel()
            await asyncio.gather(sender, acker, return_exceptions=True)

    async def _send_all(self) -> None:
        stream = self.keys.stream
        last = "0-0"
        resending = True
        while not self._draining:
            if resending:
                reply = await self.redis.xreadgroup(
                    GROUP, CONSUMER, {stream: last}, count=self._read_count
                )
                entries = reply[0][1] if reply else []
                if not entries:
                    resending = False
                    continue
            else:
                room = self._max_in_flight - len(self._in_flight)
                if room <= 0:
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                reply = await self.redis.xreadgroup(
                    GROUP, CONSUMER, {stream: ">"}, count=min(room, self._read_count), block=500
                )
                entries = reply[0][1] if reply else []
            for entry_id, fields in entries:
                if resending:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                await self._send_one(entry_id, fields, resent=resending)

    async def _send_one(self, entry_id: Any, fields: Any, *, resent: bool) -> None:
        key = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        if not fields:
            # Trimmed after it was read and before it was acknowledged.
            self.stats.dropped_found += 1
            await self.redis.incr(self.keys.dropped)
            self._push_done(_InFlight(key, None, None, None, failed=True))
            return
        entry = Entry.from_fields(key, fields)
        channel, slot = await self._channel_for(entry)
        if channel is None:
            self._push_done(_InFlight(key, None, None, None, failed=True))
            return
        body = {"type": "broadcast", "event": entry.event, "payload": orjson.loads(entry.payload)}
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        push = _Push(c.BROADCAST, body, self._binary, future)
        try:
            await channel._send_push(push)
        except NotConnectedError as exc:
            future.cancel()
            raise _Retry(str(exc)) from None
        if slot is not None:
            slot.in_flight += 1
            slot.last_used = time.monotonic()
        if resent:
            self.stats.resent += 1
        self._push_done(_InFlight(key, future, push, channel, slot, resent=resent))

    def _push_done(self, item: _InFlight) -> None:
        self._in_flight.append(item)
        self._changed.set()

    async def _ack_all(self) -> None:
        pending = self._in_flight
        while True:
            if not pending:
                if self._draining:
                    return
                self._changed.clear()
                await self._changed.wait()
                continue
            head = pending[0]
            if head.future is not None and not head.future.done():
                try:
                    await asyncio.wait_for(asyncio.shield(head.future), self._timeout)
                except TimeoutError:
                    raise _Retry(
                        f"no ack for {head.id} on {head.channel.topic if head.channel else '?'} "
                        f"within {self._timeout:g} s"
                    ) from None
                except NotConnectedError:
                    raise _Retry(
                        f"the connection closed with {len(pending)} sends unanswered"
                    ) from None
            ids: list[str] = []
            sent = failed = 0
            while pending and (pending[0].future is None or pending[0].future.done()):
                item = pending[0]
                if item.future is not None:
                    ok = self._outcome(item)
                    if ok is None:
                        raise _Retry(f"the connection closed before {item.id} was answered")
                    if ok:
                        sent += 1
                    else:
                        failed += 1
                else:
                    failed += 1 if item.failed else 0
                pending.popleft()
                if item.slot is not None:
                    item.slot.in_flight -= 1
                ids.append(item.id)
            self._changed.set()
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xack(self.keys.stream, GROUP, *ids)
                if sent:
                    pipe.incrby(self.keys.sent, sent)
                if failed:
                    pipe.incrby(self.keys.failed, failed)
                await pipe.execute()
            self.stats.sent += sent

    def _outcome(self, item: _InFlight) -> bool | None:
        """True: acknowledged; False: refused (logged); None: no answer (resend)."""
        assert item.future is not None
        if item.future.cancelled():
            return None
        exc = item.future.exception()
        if exc is None:
            reply = item.future.result()
            if reply.status == c.STATUS_OK:
                return True
            exc = PushError(
                item.channel.topic if item.channel else "?", c.BROADCAST, reply.response
            )
        if isinstance(exc, PushError):
            self.stats.failed += 1
            self.stats.last_error = str(exc)
            logger.error("outbox entry %s refused by the server, not sent: %s", item.id, exc)
            return False
        return None

    def _abandon(self) -> None:
        """Forget what is in flight (it stays pending in Redis and is sent again)."""
        while self._in_flight:
            item = self._in_flight.popleft()
            if item.slot is not None:
                item.slot.in_flight -= 1
            if item.push is not None and item.push.ref is not None and item.channel is not None:
                item.channel._replies.pop(item.push.ref, None)
            future = item.future
            if future is not None:
                if future.done():
                    if not future.cancelled():
                        future.exception()  # retrieved: no "never retrieved" warning
                else:
                    future.cancel()

    # -- channels --------------------------------------------------------------------------

    async def _channel_for(self, entry: Entry) -> tuple[RealtimeChannel | None, _OnDemand | None]:
        topic = entry.topic
        relay = self._relay.get(topic)
        if relay is not None:
            channel, private = relay
            if private != entry.private:
                self._refuse(
                    entry,
                    f"the worker relays {topic} as a {'private' if private else 'public'} "
                    "channel and one socket cannot join both kinds",
                )
                return None, None
            await self._wait_joined(channel)
            return channel, None
        slot = self._on_demand.get(topic)
        if slot is not None and slot.private != entry.private:
            await self._leave(topic)
            slot = None
        if slot is not None and not slot.channel._is_leaving:
            await self._wait_joined(slot.channel)
            return slot.channel, slot
        await self._make_room()
        channel = self._client.channel(
            topic, broadcast={"self": False, "ack": True}, private=entry.private
        )
        try:
            await channel.subscribe(timeout=self._timeout)
        except JoinTimeout as exc:
            raise _Retry(str(exc)) from None
        except JoinError as exc:
            with contextlib.suppress(NotConnectedError):
                await channel.unsubscribe(timeout=self._timeout)
            self._refuse(entry, str(exc))
            return None, None
        slot = _OnDemand(channel, entry.private, time.monotonic())
        self._on_demand[topic] = slot
        return channel, slot

    def _refuse(self, entry: Entry, reason: str) -> None:
        self.stats.failed += 1
        self.stats.last_error = reason
        logger.error(
            "outbox entry %s (%r on %s) not sent: %s", entry.id, entry.event, entry.topic, reason
        )

    async def _wait_joined(self, channel: RealtimeChannel) -> None:
        deadline = time.monotonic() + self._timeout
        while not channel.is_joined:
            if time.monotonic() >= deadline or not self._client.is_connected:
                raise _Retry(f"{channel.topic} is not joined")
            await asyncio.sleep(0.01)

    async def _make_room(self) -> None:
        if len(self._on_demand) < self._max_channels:
            return
        idle = [(s.last_used, t) for t, s in self._on_demand.items() if s.in_flight == 0]
        if not idle:
            raise _Retry("every on-demand channel has sends in flight")
        await self._leave(min(idle)[1])

    async def _leave(self, topic: str) -> None:
        slot = self._on_demand.pop(topic, None)
        if slot is not None:
            logger.info("leaving %s (outbox channel idle)", topic)
            await self._client.remove_channel(slot.channel)

    async def _janitor(self) -> None:
        while True:
            await asyncio.sleep(self._linger / 2)
            cutoff = time.monotonic() - self._linger
            for topic, slot in list(self._on_demand.items()):
                if slot.in_flight == 0 and slot.last_used < cutoff:
                    try:
                        await self._leave(topic)
                    except NotConnectedError as exc:
                        logger.debug("leaving %s: %s", topic, exc)


# -- status ------------------------------------------------------------------------------


def read_status(redis: Any, keys: OutboxKeys) -> dict[str, Any]:
    """What ``manage.py realtime_worker --status`` prints, read from Redis (sync client)."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(keys.lease)
    pipe.hgetall(keys.status)
    pipe.xlen(keys.stream)
    pipe.get(keys.sent)
    pipe.get(keys.dropped)
    pipe.get(keys.failed)
    holder, status, length, sent, dropped, failed = pipe.execute()
    pending = lag = 0
    try:
        for info in redis.xinfo_groups(keys.stream):
            if _text(info.get("name")) == GROUP:
                pending = int(info.get("pending") or 0)
                lag = int(info.get("lag") or 0)
    except Exception as exc:  # noqa: BLE001 - a missing stream only means "nothing yet"
        logger.debug("no outbox stream yet: %s", exc)
    fields = {_text(k): _text(v) for k, v in (status or {}).items()}
    return {
        "lease_holder": _text(holder) if holder else None,
        "connected": fields.get("connected") == "1",
        "worker": fields.get("holder"),
        "updated_at": float(fields["updated_at"]) if "updated_at" in fields else None,
        "last_error": fields.get("last_error") or "",
        "outbox_length": int(length or 0),
        "outbox_pending": pending,
        "outbox_unread": lag,
        "sent": int(sent or 0),
        "dropped": int(dropped or 0),
        "failed": int(failed or 0),
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
