"""Django-side presence in Redis, shared by every ASGI process (PROTOCOL.md §6).

Theory of operation
-------------------
Each channel join that tracks presence owns one *entry*: one meta under its presence key
(a user with two tabs has two entries under one key). Entries of a topic live in two Redis
keys named after ``group_for(topic)``:

- ``<prefix>:presence:<group>:metas`` — hash, entry id → JSON ``{"key", "payload", "meta",
  "user"}``;
- ``<prefix>:presence:<group>:expiry`` — sorted set, entry id → expiry (Unix seconds).

A topic with entries is also in the set ``<prefix>:presence:topics``.

Every process pushes the expiry of its own entries ``PRESENCE_TTL`` seconds ahead every
``PRESENCE_REFRESH`` seconds, and every ``PRESENCE_SWEEP`` seconds tries to take the sweep
lock (``SET NX PX``); the holder removes expired entries (atomically, per topic, with a Lua
script, so a leave is announced once) and publishes their leave diffs. So the entries of a
process that died without cleaning up (SIGKILL, power loss) are gone within
``PRESENCE_TTL + PRESENCE_SWEEP`` seconds (15 + 5 = 20 s by default).
A live process that stalls for longer than ``PRESENCE_TTL`` (its event loop blocked) is
treated the same way: its entries are announced as left, and come back only when their
connections track again.

Every change is published to the topic's Channels group as ``realtime.presence_diff``
(``{"topic", "joins", "leaves"}``), the same message the worker relays for Supabase-side
presence, and the gateway of every process delivers it to its browsers. Signals
``presence_joined`` / ``presence_left`` (:mod:`supa_realtime.signals`) are sent in the
process that made the change (for an expiry, the sweeping process).

A second *source* merges in: ``<prefix>:presence:<group>:upstream`` is a hash
``phx_ref → JSON {"key", "meta"}`` written by the worker from the Supabase-side presence of
the same topic (:meth:`PresenceStore.replace_upstream`, :meth:`PresenceStore.apply_upstream_diff`).
:meth:`PresenceStore.state` returns the union of both, so a browser sees everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any, Final

import orjson

from . import events
from .groups import group_for
from .phoenix.server_presence import diff_payload, tracked_meta
from .signals import presence_joined, presence_left

__all__ = ["PresenceKeys", "PresenceStore"]

logger = logging.getLogger(__name__)

_UNTRACK_LUA: Final = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
    redis.call('HDEL', KEYS[1], ARGV[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
    if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
end
return v
"""

_SWEEP_LUA: Final = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local out = {}
for _, id in ipairs(ids) do
    local v = redis.call('HGET', KEYS[1], id)
    if v then table.insert(out, v) end
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return out
"""


class PresenceKeys:
    """Redis key names of the presence store under ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.base = f"{prefix}:presence"

    @property
    def topics(self) -> str:
        return f"{self.base}:topics"

    @property
    def lock(self) -> str:
        return f"{self.base}:sweep-lock"

    def metas(self, topic: str) -> str:
        return f"{self.base}:{group_for(topic)}:metas"

    def expiry(self, topic: str) -> str:
        return f"{self.base}:{group_for(topic)}:expiry"

    def upstream(self, topic: str) -> str:
        """The hash the worker fills with the Supabase-side presence of ``topic``."""
        return f"{self.base}:{group_for(topic)}:upstream"


def _state(entries: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for entry in entries:
        state.setdefault(str(entry["key"]), {"metas": []})["metas"].append(entry["meta"])
    return state


class PresenceStore:
    """Presence of this process's connections, in Redis, merged with everyone else's.

    Args:
        redis: a ``redis.asyncio.Redis`` client.
        layer: the channel layer diffs are published on (``None``: not published).
        prefix: ``SUPA_REALTIME["REDIS_PREFIX"]``.
        ttl: seconds an entry lives without a refresh.
        refresh: seconds between refreshes of this process's entries.
        sweep: seconds between sweeps for expired entries.
    """

    def __init__(
        self,
        redis: Any,
        layer: Any,
        *,
        prefix: str,
        ttl: float = 15.0,
        refresh: float = 5.0,
        sweep: float = 5.0,
    ) -> None:
        self.redis = redis
        self.layer = layer
        self.keys = PresenceKeys(prefix)
        self.ttl = ttl
        self.refresh_interval = refresh
        self.sweep_interval = sweep
        self.process_id = uuid.uuid4().hex
        self._owned: dict[str, set[str]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._untrack = redis.register_script(_UNTRACK_LUA)
        self._sweep = redis.register_script(_SWEEP_LUA)

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start refreshing this process's entries and sweeping expired ones."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._every(self.refresh_interval, self.refresh)),
                asyncio.create_task(self._every(self.sweep_interval, self.sweep)),
            ]

    async def stop(self) -> None:
        """Stop the background tasks (entries are left to their owners or the sweep)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _every(self, interval: float, job: Any) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception:
                logger.exception("presence %s failed; retrying in %g s", job.__name__, interval)

    # changes -----------------------------------------------------------------------------

    def entry_id(self, connection: str, join: int) -> str:
        """The entry id of one join of one connection of this process."""
        return f"{self.process_id}:{connection}:{join}"

    async def track(
        self,
        topic: str,
        key: str,
        entry: str,
        payload: Mapping[str, Any],
        *,
        user: str | None = None,
    ) -> dict[str, Any] | None:
        """Track ``payload`` as ``entry``'s meta under ``key``; the diff, or ``None`` for a
        no-op (the same payload again). A second track by the same entry is an update: one
        diff with a join (``phx_ref_prev`` set) and a leave of the old meta."""
        metas_key = self.keys.metas(topic)
        raw = await self.redis.hget(metas_key, entry)
        old = orjson.loads(raw) if raw is not None else None
        if old is not None and old["payload"] == payload:
            await self.redis.zadd(self.keys.expiry(topic), {entry: time.time() + self.ttl})
            return None
        meta = tracked_meta(payload, old["meta"] if old is not None else None)
        record = {"key": key, "payload": dict(payload), "meta": meta, "user": user}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(metas_key, entry, orjson.dumps(record))
            pipe.zadd(self.keys.expiry(topic), {entry: time.time() + self.ttl})
            pipe.sadd(self.keys.topics, topic)
            await pipe.execute()
        self._owned.setdefault(topic, set()).add(entry)
        leaves = {key: [old["meta"]]} if old is not None else {}
        diff = diff_payload({key: [meta]}, leaves)
        await self._publish(topic, diff)
        if old is not None:
            await self._signal_left(topic, old, "update")
        await self._signal_joined(topic, record)
        return diff

    async def untrack(
        self, topic: str, entry: str, *, reason: str = "untrack"
    ) -> dict[str, Any] | None:
        """Remove ``entry``; the leave diff, or ``None`` if it tracked nothing."""
        owned = self._owned.get(topic)
        if owned is not None:
            owned.discard(entry)
            if not owned:
                del self._owned[topic]
        raw = await self._untrack(
            keys=[self.keys.metas(topic), self.keys.expiry(topic), self.keys.topics],
            args=[entry, topic],
        )
        if raw is None:
            return None
        old = orjson.loads(raw)
        diff = diff_payload({}, {str(old["key"]): [old["meta"]]})
        await self._publish(topic, diff)
        await self._signal_left(topic, old, reason)
        return diff

    # reading -----------------------------------------------------------------------------

    async def state(self, topic: str) -> dict[str, Any]:
        """The merged ``presence_state`` payload of ``topic``: live Django-side entries and
        the Supabase-side entries the worker stored."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(self.keys.expiry(topic), time.time(), "+inf")
            pipe.hgetall(self.keys.metas(topic))
            pipe.hvals(self.keys.upstream(topic))
            live, metas, upstream = await pipe.execute()
        live_ids = set(live)
        entries = [orjson.loads(v) for k, v in metas.items() if k in live_ids]
        entries.extend(orjson.loads(v) for v in upstream)
        return _state(entries)

    # upstream source (written by the worker) ---------------------------------------------

    async def replace_upstream(
        self, topic: str, state: Mapping[str, Any], *, ttl: float | None = None
    ) -> None:
        """Store a Supabase-side ``presence_state`` of ``topic``, replacing the previous one.

        ``ttl``: seconds until the stored state expires unless written again (so the state
        of a worker that died does not linger); ``None`` keeps it until replaced.
        """
        key = self.keys.upstream(topic)
        fields = {
            str(meta["phx_ref"]): orjson.dumps({"key": k, "meta": meta})
            for k, value in state.items()
            for meta in value.get("metas", [])
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if fields:
                pipe.hset(key, mapping=fields)
                if ttl is not None:
                    pipe.pexpire(key, int(ttl * 1000))
            await pipe.execute()

    async def apply_upstream_diff(
        self,
        topic: str,
        joins: Mapping[str, Any],
        leaves: Mapping[str, Any],
        *,
        ttl: float | None = None,
    ) -> None:
        """Apply a Supabase-side ``presence_diff`` of ``topic`` to the stored upstream state
        (``ttl`` as in :meth:`replace_upstream`)."""
        key = self.keys.upstream(topic)
        async with self.redis.pipeline(transaction=True) as pipe:
            for value in leaves.values():
                for meta in value.get("metas", []):
                    pipe.hdel(key, str(meta["phx_ref"]))
            for k, value in joins.items():
                for meta in value.get("metas", []):
                    pipe.hset(key, str(meta["phx_ref"]), orjson.dumps({"key": k, "meta": meta}))
            if ttl is not None:
                pipe.pexpire(key, int(ttl * 1000))
            await pipe.execute()

    # upkeep ------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Push the expiry of every entry of this process ``ttl`` seconds ahead."""
        if not self._owned:
            return
        expiry = time.time() + self.ttl
        async with self.redis.pipeline(transaction=False) as pipe:
            for topic, entries in self._owned.items():
                if entries:
                    pipe.zadd(self.keys.expiry(topic), dict.fromkeys(entries, expiry), xx=True)
            await pipe.execute()

    async def sweep(self) -> int:
        """Remove expired entries of every topic if this process gets the sweep lock;
        publish their leaves. Returns how many entries were removed."""
        got = await self.redis.set(
            self.keys.lock, self.process_id, nx=True, px=max(1, int(self.sweep_interval * 900))
        )
        if not got:
            return 0
        removed = 0
        now = time.time()
        for raw_topic in await self.redis.smembers(self.keys.topics):
            topic = raw_topic.decode() if isinstance(raw_topic, bytes) else str(raw_topic)
            gone = await self._sweep(
                keys=[self.keys.metas(topic), self.keys.expiry(topic), self.keys.topics],
                args=[now, topic],
            )
            if not gone:
                continue
            leaves: dict[str, list[dict[str, Any]]] = {}
            records = [orjson.loads(v) for v in gone]
            for record in records:
                leaves.setdefault(str(record["key"]), []).append(record["meta"])
            removed += len(records)
            logger.info("presence: %d expired entries removed from %r", len(records), topic)
            await self._publish(topic, diff_payload({}, leaves))
            for record in records:
                await self._signal_left(topic, record, "expired")
        return removed

    # publishing --------------------------------------------------------------------------

    async def _publish(self, topic: str, diff: dict[str, Any]) -> None:
        if self.layer is None:
            return
        await self.layer.group_send(
            group_for(topic),
            {"type": events.PRESENCE_DIFF, "topic": topic, **diff},
        )

    async def _signal_joined(self, topic: str, record: Mapping[str, Any]) -> None:
        results = await presence_joined.asend_robust(
            type(self), topic=topic, key=record["key"], meta=record["meta"], user=record["user"]
        )
        _log_failures(results, "presence_joined")

    async def _signal_left(self, topic: str, record: Mapping[str, Any], reason: str) -> None:
        results = await presence_left.asend_robust(
            type(self),
            topic=topic,
            key=record["key"],
            meta=record["meta"],
            user=record["user"],
            reason=reason,
        )
        _log_failures(results, "presence_left")


def _log_failures(results: list[tuple[Any, Any]], name: str) -> None:
    for receiver, result in results:
        if isinstance(result, BaseException):
            logger.error(
                "%s receiver %r raised", name, receiver, exc_info=(type(result), result, None)
            )
