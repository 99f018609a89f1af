"""``broadcast()`` and ``abroadcast()``: speak into Supabase Realtime from Django code.

Theory of operation
-------------------
Everything that can be wrong with a broadcast is found where it is made: the topic and the
event must be non-empty strings of at most :data:`MAX_NAME_LENGTH` characters, the payload
a JSON object that Django's ``DjangoJSONEncoder`` can encode (datetimes, dates, times,
durations, ``Decimal``, ``UUID``, lazy strings) and, encoded, no larger than
``SUPA_REALTIME["BROADCAST"]["MAX_PAYLOAD_BYTES"]``. A problem raises
:class:`~supa_realtime.exceptions.InvalidBroadcast` naming what to fix.

Then, with the ``"worker"`` transport (the default):

1. the entry is appended to the Redis outbox (:mod:`supa_realtime.outbox`), from which the
   active worker sends it to Supabase over its socket and removes it once acknowledged;
2. the typed group message ``realtime.broadcast`` goes at once to the local group
   ``group_for(topic)``, in the same shape the worker relays, so consumers cannot tell a
   local broadcast from a relayed one. The worker joins with ``self: false``, so its own
   send never comes back to it and is never relayed into the group a second time.

With the ``"rest"`` transport the broadcast is POSTed to the REST API instead; Supabase
delivers it to every subscriber, the worker included, so the local group gets it from the
worker when the topic is one of ``SUBSCRIPTIONS`` and directly otherwise (once either way).

``broadcast()`` defers all of this with ``transaction.on_commit`` (immediate outside a
transaction): a rolled-back transaction sends nothing anywhere. ``abroadcast()`` sends at
once. The sync path uses a plain (blocking) Redis client and, for ``channels_redis``'s
``RedisChannelLayer``, a sync group send, so a sync view pays a few Redis round trips and no
event loop.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
import types
import weakref
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson
from django.core.serializers.json import DjangoJSONEncoder

from . import events
from .exceptions import InvalidBroadcast
from .groups import group_for
from .layers import _GROUP_SEND_LUA, GroupSender, _is_redis_core_layer
from .outbox import APPEND_LUA, APPEND_SCRIPT_BODY, OutboxKeys, append_args
from .phoenix import constants as c
from .rest import RestMessage

__all__ = ["MAX_NAME_LENGTH", "Prepared", "abroadcast", "broadcast", "prepare"]

logger = logging.getLogger(__name__)

#: Longest topic (without ``realtime:``) and event name accepted, in characters.
MAX_NAME_LENGTH: Final = 255
Transport = Literal["worker", "rest"]
_TRANSPORTS: Final = ("worker", "rest")
_PAYLOAD_SETTING: Final = 'SUPA_REALTIME["BROADCAST"]["MAX_PAYLOAD_BYTES"]'
_ENCODE_OPTIONS: Final = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS
)
_django_encoder = DjangoJSONEncoder()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated broadcast: the wire topic, the event, the encoded and decoded payload."""

    topic: str
    event: str
    data: bytes
    payload: dict[str, Any]
    private: bool

    @property
    def group_message(self) -> dict[str, Any]:
        """The ``realtime.broadcast`` message local consumers receive."""
        return {
            "type": events.BROADCAST,
            "topic": self.topic,
            "event": self.event,
            "payload": self.payload,
        }

    @property
    def rest_message(self) -> RestMessage:
        return RestMessage(self.topic, self.event, self.data, self.private)


@dataclass(frozen=True, slots=True)
class _Config:
    """What one send reads from the settings, parsed once (until the settings change)."""

    broadcast: Any
    redis_url: str
    keys: OutboxKeys
    layer_alias: str
    push_timeout: float


_config_cache: list[_Config] = []


def _config() -> _Config:
    if _config_cache:
        return _config_cache[0]
    from .conf import settings as realtime_settings

    config = _Config(
        broadcast=realtime_settings.BROADCAST,
        redis_url=realtime_settings.REDIS_URL,
        keys=OutboxKeys(realtime_settings.REDIS_PREFIX),
        layer_alias=realtime_settings.CHANNEL_LAYER,
        push_timeout=realtime_settings.PUSH_TIMEOUT,
    )
    _config_cache[:] = [config]
    _connect_setting_changed()
    return config


def _clear_config(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SUPA_REALTIME", "CHANNEL_LAYERS"):
        _config_cache.clear()


@functools.cache
def _connect_setting_changed() -> None:
    from django.test.signals import setting_changed

    setting_changed.connect(_clear_config, weak=False, dispatch_uid="supa_realtime.broadcast")


def _name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidBroadcast(f"the broadcast {what} must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidBroadcast(f"the broadcast {what} is empty; give it a name")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidBroadcast(
            f"the broadcast {what} is {len(value)} characters long; the limit is "
            f"{MAX_NAME_LENGTH} ({value[:40]!r}...)"
        )
    return value


def _encode(payload: Any, topic: str, event: str) -> bytes:
    bad: list[type] = []

    def default(value: Any) -> Any:
        try:
            return _django_encoder.default(value)
        except TypeError:
            bad.append(type(value))
            raise

    try:
        return orjson.dumps(payload, default=default, option=_ENCODE_OPTIONS)
    except orjson.JSONEncodeError as exc:
        if bad:
            kind = f"{bad[-1].__module__}.{bad[-1].__qualname__}"
            raise InvalidBroadcast(
                f"the payload of {event!r} on {topic!r} holds a {kind}, "
                "which JSON cannot carry; convert it to a str, number, list or dict "
                "(DjangoJSONEncoder handles datetimes, Decimal and UUID)"
            ) from None
        raise InvalidBroadcast(
            f"the payload of {event!r} on {topic!r} cannot be encoded as JSON: {exc}"
        ) from None


def prepare(
    topic: str,
    event: str,
    payload: Any,
    *,
    private: bool = False,
    max_payload_bytes: int | None = None,
) -> Prepared:
    """Validate and encode a broadcast.

    Raises:
        InvalidBroadcast: the topic, event or payload cannot be sent (the message says why).
    """
    _name(topic, "topic")
    sub = topic[len(c.TOPIC_PREFIX) :] if topic.startswith(c.TOPIC_PREFIX) else topic
    if not sub:
        raise InvalidBroadcast(
            f"the broadcast topic {topic!r} names no channel; use e.g. 'realtime:room1' or 'room1'"
        )
    _name(sub, "topic")
    _name(event, "event")
    if not isinstance(private, bool):
        raise InvalidBroadcast(f"private must be True or False, not {type(private).__name__}")
    if not isinstance(payload, dict):
        raise InvalidBroadcast(
            f"the payload of {event!r} on {topic!r} must be a dict (a JSON object, as Supabase "
            f"requires), not {type(payload).__name__}"
        )
    data = _encode(payload, topic, event)
    if max_payload_bytes is None:
        max_payload_bytes = _config().broadcast.max_payload_bytes
    if len(data) > max_payload_bytes:
        raise InvalidBroadcast(
            f"the payload of {event!r} on {topic!r} is {len(data)} bytes as JSON, over the "
            f"{max_payload_bytes}-byte limit; send less, or raise {_PAYLOAD_SETTING} up to "
            "your Supabase plan's limit"
        )
    full = c.TOPIC_PREFIX + sub
    return Prepared(full, event, data, orjson.loads(data), private)


def _transport(transport: str | None) -> Transport:
    if transport is None:
        transport_setting: Transport = _config().broadcast.transport
        return transport_setting
    if transport not in _TRANSPORTS:
        raise InvalidBroadcast(f'transport must be "worker" or "rest", not {transport!r}')
    return transport  # type: ignore[return-value]


def broadcast(
    topic: str,
    event: str,
    payload: dict[str, Any],
    *,
    private: bool = False,
    transport: Transport | None = None,
    using: str | None = None,
) -> None:
    """Broadcast ``event`` with ``payload`` on ``topic``, after the current transaction commits.

    Safe in sync views. Inside ``transaction.atomic`` nothing is sent until the transaction
    commits, and nothing at all if it rolls back; outside a transaction it is sent at once.
    Local Channels consumers of ``group_for(topic)`` receive it once, and so do Supabase
    Realtime clients subscribed to ``topic``.

    Args:
        topic: ``"room1"`` or ``"realtime:room1"``.
        event: the broadcast event name.
        payload: a dict, encoded with ``DjangoJSONEncoder``.
        private: send to the private (RLS-authorized) channel of the topic.
        transport: ``"worker"`` (the outbox) or ``"rest"``; default
            ``SUPA_REALTIME["BROADCAST"]["TRANSPORT"]``.
        using: the database alias whose transaction to wait for (default: ``"default"``).

    Raises:
        InvalidBroadcast: at the call, when the topic, event or payload cannot be sent.
        BroadcastRejected: with the REST transport, when the server refuses (raised where
            the send happens: at the call, or when the transaction commits).
    """
    import asyncio

    from django.core.exceptions import SynchronousOnlyOperation
    from django.db import transaction

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no event loop in this thread: the normal case for sync code
    else:
        raise SynchronousOnlyOperation(
            "broadcast() was called from async code; use `await abroadcast(...)` there"
        )
    prepared = prepare(topic, event, payload, private=private)
    mode = _transport(transport)
    transaction.on_commit(functools.partial(send_prepared, prepared, mode), using=using)


async def abroadcast(
    topic: str,
    event: str,
    payload: dict[str, Any],
    *,
    private: bool = False,
    transport: Transport | None = None,
) -> None:
    """:func:`broadcast` for async code: validated, then sent at once (no transaction)."""
    prepared = prepare(topic, event, payload, private=private)
    await asend_prepared(prepared, _transport(transport))


# -- sending -------------------------------------------------------------------------------


def send_prepared(prepared: Prepared, transport: Transport = "worker") -> None:
    """Send a validated broadcast now (blocking)."""
    config = _config()
    if transport == "rest":
        from . import rest

        url, key = _rest_target()
        rest.send_sync(url, key, [prepared.rest_message], timeout=config.push_timeout)
        if not _relayed(prepared.topic):
            _deliver_local_sync(prepared)
        return
    broadcast_settings = config.broadcast
    keys = config.keys
    redis_url = config.redis_url
    client = _sync_redis(redis_url)
    args = append_args(
        prepared.topic,
        prepared.event,
        prepared.data,
        prepared.private,
        retention_seconds=broadcast_settings.retention_seconds,
        retention_messages=broadcast_settings.retention_messages,
    )
    layer = _layer()
    if layer is not None and _one_trip_layer(layer, redis_url):
        # Outbox append and local group send in one script: one round trip.
        group = group_for(prepared.topic)
        full = _run_script(
            client,
            APPEND_AND_GROUP_SEND_LUA,
            keys.stream,
            keys.dropped,
            layer._group_key(group),
            *args,
            *_group_send_args(layer, prepared.group_message),
        )
        _report_dropped(int(full), group)
        return
    _run_script(client, APPEND_LUA, keys.stream, keys.dropped, *args)
    _deliver_local_sync(prepared)


async def asend_prepared(prepared: Prepared, transport: Transport = "worker") -> None:
    """Send a validated broadcast now (async)."""
    config = _config()
    if transport == "rest":
        from . import rest

        url, key = _rest_target()
        await rest.send(url, key, [prepared.rest_message], timeout=config.push_timeout)
        if not _relayed(prepared.topic):
            await _deliver_local_async(prepared)
        return
    broadcast_settings = config.broadcast
    keys = config.keys
    client = _async_redis(config.redis_url)
    args = append_args(
        prepared.topic,
        prepared.event,
        prepared.data,
        prepared.private,
        retention_seconds=broadcast_settings.retention_seconds,
        retention_messages=broadcast_settings.retention_messages,
    )
    layer = _layer()
    if layer is not None and _one_trip_layer(layer, config.redis_url):
        group = group_for(prepared.topic)
        full = await _sync_script(client, APPEND_AND_GROUP_SEND_LUA)(
            keys=[keys.stream, keys.dropped, layer._group_key(group)],
            args=[*args, *_group_send_args(layer, prepared.group_message)],
        )
        _report_dropped(int(full), group)
        return
    await _sync_script(client, APPEND_LUA)(keys=[keys.stream, keys.dropped], args=args)
    await _deliver_local_async(prepared)


def _rest_target() -> tuple[str, str]:
    from .conf import settings as realtime_settings
    from .exceptions import ConfigurationError

    url, key = realtime_settings.URL, realtime_settings.KEY
    if not url or not key:
        raise ConfigurationError(
            "REST broadcasts need SUPA_REALTIME['URL'] and SUPA_REALTIME['KEY'] "
            "(or SUPABASE_URL and SUPABASE_KEY)"
        )
    return url, key


def _relayed(topic: str) -> bool:
    from .conf import settings as realtime_settings

    return any(s.full_topic == topic for s in realtime_settings.SUBSCRIPTIONS)


def _layer() -> Any:
    from channels.layers import get_channel_layer

    return get_channel_layer(_config().layer_alias)


def _report_dropped(dropped: int, group: str) -> None:
    if dropped:
        logger.warning(
            "broadcast to group %s: %d local deliveries dropped (a member channel is at its "
            "channel layer capacity)",
            group,
            dropped,
        )


def _deliver_local_sync(prepared: Prepared) -> None:
    layer = _layer()
    if layer is None:
        return
    group = group_for(prepared.topic)
    message = prepared.group_message
    if _is_redis_core_layer(layer):
        _report_dropped(_sync_group_sender(layer).send(group, message), group)
        return
    from asgiref.sync import async_to_sync

    async_to_sync(layer.group_send)(group, message)


async def _deliver_local_async(prepared: Prepared) -> None:
    layer = _layer()
    if layer is None:
        return
    group = group_for(prepared.topic)
    sender = _async_group_senders.get(layer)
    if sender is None:
        sender = GroupSender(layer)
        _async_group_senders[layer] = sender
    _report_dropped(await sender.send(group, [prepared.group_message]), group)


# -- Redis clients -------------------------------------------------------------------------

_lock = threading.Lock()
_sync_clients: dict[str, Any] = {}
_scripts: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
_async_clients: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
_async_group_senders: weakref.WeakKeyDictionary[Any, GroupSender] = weakref.WeakKeyDictionary()
_sync_group_senders: weakref.WeakKeyDictionary[Any, _SyncGroupSender] = weakref.WeakKeyDictionary()


def _sync_redis(url: str) -> Any:
    client = _sync_clients.get(url)
    if client is None:
        import redis

        with _lock:
            client = _sync_clients.get(url)
            if client is None:
                client = redis.Redis.from_url(url)
                _sync_clients[url] = client
    return client


_SHAS: Final[dict[str, str]] = {}


def _run_script(client: Any, source: str, *keys_then_args: Any) -> Any:
    """``EVALSHA`` straight through ``execute_command`` (redis-py's ``Script`` wrapper costs
    a noticeable share of a call), loading the script when Redis does not know it. Keys are
    the first arguments: 3 for the combined script, 2 for the append."""
    from redis.exceptions import NoScriptError

    sha = _SHAS.get(source)
    if sha is None:
        import hashlib

        sha = _SHAS[source] = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    numkeys = 3 if source is APPEND_AND_GROUP_SEND_LUA else 2
    try:
        return client.execute_command("EVALSHA", sha, numkeys, *keys_then_args)
    except NoScriptError:
        client.script_load(source)
        return client.execute_command("EVALSHA", sha, numkeys, *keys_then_args)


def _sync_script(client: Any, source: str) -> Any:
    """A registered script of ``client`` (sync or asyncio: redis-py gives the matching kind)."""
    scripts = _scripts.get(client)
    if scripts is None:
        scripts = _scripts[client] = {}
    script = scripts.get(source)
    if script is None:
        script = scripts[source] = client.register_script(source)
    return script


def _async_redis(url: str) -> Any:
    import asyncio

    import redis.asyncio

    loop = asyncio.get_running_loop()
    clients = _async_clients.setdefault(loop, {})
    client = clients.get(url)
    if client is None:
        client = redis.asyncio.Redis.from_url(url)
        clients[url] = client
    return client


class _SyncGroupSender:
    """``group_send`` for ``channels_redis.core.RedisChannelLayer`` without an event loop.

    Same keys, serialization and capacity rules as the layer's own ``group_send`` (and as
    :class:`~supa_realtime.layers.GroupSender`), through blocking Redis clients.
    """

    def __init__(self, layer: Any) -> None:
        import redis

        self.layer = layer
        self._clients = []
        for host in layer.hosts:
            host = dict(host)
            if "address" in host:
                pool = redis.ConnectionPool.from_url(host.pop("address"), **host)
            else:
                pool = redis.ConnectionPool(**host)
            self._clients.append(redis.Redis(connection_pool=pool))
        self._scripts = [client.register_script(_GROUP_SEND_LUA) for client in self._clients]

    def send(self, group: str, message: dict[str, Any]) -> int:
        layer = self.layer
        key = layer._group_key(group)
        now = _next_score()
        client = self._clients[layer.consistent_hash(group)]
        pipe = client.pipeline(transaction=False)
        pipe.zremrangebyscore(key, min=0, max=int(now) - layer.group_expiry)
        pipe.zrange(key, 0, -1)
        _, members = pipe.execute()
        if not members:
            return 0
        names = [m.decode("utf8") for m in members]
        by_connection, key_to_message, key_to_capacity = layer._map_channel_keys_to_connection(
            names, message
        )
        full = 0
        for index, channel_keys in by_connection.items():
            args = [key_to_message[k] for k in channel_keys]
            args += [key_to_capacity[k] for k in channel_keys]
            full += int(
                self._scripts[index](keys=channel_keys, args=[*args, now, int(layer.expiry)])
            )
        return full


# -- outbox append and group send in one round trip ----------------------------------------
#
# For the common deployment (one Redis for the channel layer and the outbox, channels_redis's
# default msgpack serializer, no encryption, one capacity for every channel) the message
# each member channel gets is the layer's own format: 12 random bytes, then the msgpack map
# of the message plus "__asgi_channel__": [the channel names sharing that Redis key]. The
# client packs the message once; the script adds the channel list per key.

APPEND_AND_GROUP_SEND_LUA: Final = (
    "local function append()\n"
    + APPEND_SCRIPT_BODY
    + """
end
local id = append()
local n = 6
local prefix = ARGV[n + 1]
local body = ARGV[n + 2]
local entries = tonumber(ARGV[n + 3])
local capacity = tonumber(ARGV[n + 4])
local now = tonumber(ARGV[n + 5])
local expiry = tonumber(ARGV[n + 6])
local group_cutoff = tonumber(ARGV[n + 7])
local nonce = ARGV[n + 8]
local function be(value, bytes)
    local out = ''
    for i = bytes - 1, 0, -1 do
        out = out .. string.char(math.floor(value / 256 ^ i) % 256)
    end
    return out
end
local function str(s)
    local l = #s
    if l < 32 then return string.char(0xa0 + l) .. s end
    if l < 256 then return string.char(0xd9, l) .. s end
    if l < 65536 then return string.char(0xda) .. be(l, 2) .. s end
    return string.char(0xdb) .. be(l, 4) .. s
end
local function header(n, fix, c16, c32)
    if n < 16 then return string.char(fix + n) end
    if n < 65536 then return string.char(c16) .. be(n, 2) end
    return string.char(c32) .. be(n, 4)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], 0, group_cutoff)
local members = redis.call('ZRANGE', KEYS[3], 0, -1)
local by_key, order = {}, {}
for _, name in ipairs(members) do
    local bang = string.find(name, '!', 1, true)
    local key = prefix .. (bang and string.sub(name, 1, bang) or name)
    if not by_key[key] then
        by_key[key] = {}
        order[#order + 1] = key
    end
    table.insert(by_key[key], name)
end
local full = 0
local head = header(entries + 1, 0x80, 0xde, 0xdf) .. body .. str('__asgi_channel__')
for i, key in ipairs(order) do
    local names = by_key[key]
    local parts = {nonce, be(i, 4), head, header(#names, 0x90, 0xdc, 0xdd)}
    for _, name in ipairs(names) do parts[#parts + 1] = str(name) end
    redis.call('ZREMRANGEBYSCORE', key, 0, now - expiry)
    if redis.call('ZCARD', key) < capacity then
        redis.call('ZADD', key, now, table.concat(parts))
        redis.call('EXPIRE', key, expiry)
    else
        full = full + 1
    end
end
return full
"""
)


def _one_trip_layer(layer: Any, redis_url: str) -> bool:
    """Whether the layer's format and Redis allow :data:`APPEND_AND_GROUP_SEND_LUA`."""
    cached = _one_trip.get(layer)
    if cached is not None and cached[0] == redis_url:
        return cached[1]
    ok = False
    if _is_redis_core_layer(layer) and layer.ring_size == 1 and not layer.channel_capacity:
        from channels_redis.serializers import MsgPackSerializer

        serializer = layer._serializer
        host = layer.hosts[0]
        ok = (
            isinstance(serializer, MsgPackSerializer)
            and serializer.crypter is None
            and serializer.random_prefix_length == 12
            and "address" in host  # a URL (extra keys are connection options)
            and _same_redis(str(host["address"]), redis_url)
        )
    _one_trip[layer] = (redis_url, ok)
    return ok


def _same_redis(a: str, b: str) -> bool:
    from urllib.parse import urlsplit

    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port or 6379, pa.path.strip("/") or "0", pa.query) == (
        pb.scheme,
        pb.hostname,
        pb.port or 6379,
        pb.path.strip("/") or "0",
        pb.query,
    )


def _group_send_args(layer: Any, message: dict[str, Any]) -> list[Any]:
    import msgpack  # type: ignore[import-untyped]

    packed: bytes = msgpack.packb(message)
    first = packed[0]
    skip = 1 if 0x80 <= first <= 0x8F else 3 if first == 0xDE else 5
    now = _next_score()
    return [
        layer.prefix,
        packed[skip:],
        len(message),
        layer.capacity,
        now,
        int(layer.expiry),
        int(now) - int(layer.group_expiry),
        os.urandom(8),
    ]


_one_trip: weakref.WeakKeyDictionary[Any, tuple[str, bool]] = weakref.WeakKeyDictionary()
_score_lock = threading.Lock()
_last_score = 0.0


def _next_score() -> float:
    """Strictly increasing scores, so sends from this process keep their order in a channel."""
    global _last_score
    with _score_lock:
        _last_score = max(time.time(), _last_score + 1e-6)
        return _last_score


def _sync_group_sender(layer: Any) -> _SyncGroupSender:
    sender = _sync_group_senders.get(layer)
    if sender is None:
        with _lock:
            sender = _sync_group_senders.get(layer)
            if sender is None:
                sender = _SyncGroupSender(layer)
                _sync_group_senders[layer] = sender
    return sender


class _CallableModule(types.ModuleType):
    """``supa_realtime.broadcast`` names both this module and the function; once the module
    is imported Python binds the package attribute to the module, so calling it sends."""

    def __call__(
        self,
        topic: str,
        event: str,
        payload: dict[str, Any],
        *,
        private: bool = False,
        transport: Transport | None = None,
        using: str | None = None,
    ) -> None:
        broadcast(topic, event, payload, private=private, transport=transport, using=using)


sys.modules[__name__].__class__ = _CallableModule
