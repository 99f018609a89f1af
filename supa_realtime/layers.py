"""Group sends that carry many messages per Redis round trip and count what they drop.

``RedisChannelLayer.group_send`` costs four Redis round trips per message and, when a
member channel is over capacity, drops the message with nothing but an INFO log line.
A relay that forwards thousands of frames per second needs neither: :class:`GroupSender`
sends a *batch* of group messages as one ``realtime.batch`` message in two round trips,
and returns how many deliveries were dropped so the caller can count and report them.

A ``realtime.batch`` message is ``{"type": "realtime.batch", "messages": [...]}`` where each
element is an ordinary typed message (``realtime.broadcast``, ...). Consumers built on
:class:`supa_realtime.consumers.RealtimeEventsMixin` unpack it transparently; a consumer of
its own handles it with a ``realtime_batch`` method.

Other channel layers (``RedisPubSubChannelLayer``, ``InMemoryChannelLayer``) get one
ordinary ``group_send`` per batch; their drops cannot be observed and are reported as 0.
"""

from __future__ import annotations

import time
from typing import Any

BATCH_TYPE = "realtime.batch"

# KEYS: the member channels' Redis keys. ARGV: one serialized message per key, then one
# capacity per key, then the current time and the expiry. Returns how many keys were full.
_GROUP_SEND_LUA = """
local n = #KEYS
local now = tonumber(ARGV[2 * n + 1])
local expiry = tonumber(ARGV[2 * n + 2])
local full = 0
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, now - expiry)
    if redis.call('ZCARD', KEYS[i]) < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        full = full + 1
    end
end
return full
"""


def pack(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """One group message for ``messages``: the message itself when alone, else a batch."""
    if len(messages) == 1:
        return messages[0]
    return {"type": BATCH_TYPE, "messages": messages}


def unpack(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The typed messages inside a group message (the inverse of :func:`pack`)."""
    if message.get("type") == BATCH_TYPE:
        inner: list[dict[str, Any]] = message["messages"]
        return inner
    return [message]


def _is_redis_core_layer(layer: Any) -> bool:
    try:
        from channels_redis.core import RedisChannelLayer
    except ImportError:  # pragma: no cover - channels_redis is a dependency
        return False
    return isinstance(layer, RedisChannelLayer)


class GroupSender:
    """Sends batches of typed messages to Channels groups through ``layer``.

    Args:
        layer: a channel layer instance (``channels.layers.get_channel_layer()``).
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self._counted = _is_redis_core_layer(layer)
        self._scripts: dict[int, Any] = {}
        self._last_score = 0.0

    async def send(self, group: str, messages: list[dict[str, Any]]) -> int:
        """Deliver ``messages`` in order to every member of ``group``.

        Returns:
            The number of message deliveries dropped because a member channel was full
            (its channel layer capacity reached). Always 0 for layers that cannot tell.
        """
        if not messages:
            return 0
        message = pack(messages)
        if not self._counted:
            await self.layer.group_send(group, message)
            return 0
        full_channels = await self._redis_group_send(group, message)
        return full_channels * len(messages)

    async def _redis_group_send(self, group: str, message: dict[str, Any]) -> int:
        layer = self.layer
        key = layer._group_key(group)
        connection = layer.connection(layer.consistent_hash(group))
        # Members pop messages lowest score first; equal scores would fall back to byte order,
        # so scores from this sender strictly increase to keep every group in send order.
        now = max(time.time(), self._last_score + 1e-6)
        self._last_score = now
        async with connection.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, min=0, max=int(now) - layer.group_expiry)
            pipe.zrange(key, 0, -1)
            _, members = await pipe.execute()
        if not members:
            return 0
        channel_names = [m.decode("utf8") for m in members]
        by_connection, key_to_message, key_to_capacity = layer._map_channel_keys_to_connection(
            channel_names, message
        )
        full = 0
        for index, keys in by_connection.items():
            script = self._script(index)
            args = [key_to_message[k] for k in keys] + [key_to_capacity[k] for k in keys]
            full += int(await script(keys=keys, args=[*args, now, int(layer.expiry)]))
        return full

    def _script(self, index: int) -> Any:
        # redis-py Script objects use EVALSHA and reload the script when Redis lost it.
        connection = self.layer.connection(index)
        script = self._scripts.get(index)
        if script is None or script.registered_client is not connection:
            script = connection.register_script(_GROUP_SEND_LUA)
            self._scripts[index] = script
        return script
