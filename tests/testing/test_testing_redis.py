"""The Redis fixtures and GroupCapture, against a real redis-server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer

from supa_realtime.groups import group_for
from supa_realtime.testing.redis import GroupCapture, RedisServer


def test_redis_server_answers_on_loopback(redis_server: str) -> None:
    assert redis_server.startswith("redis://127.0.0.1:")
    client = redis.Redis.from_url(redis_server)
    try:
        assert client.ping()
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
    finally:
        client.close()


def test_server_stops_and_frees_its_port(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    process = server.process
    assert process is not None
    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        assert client.ping()
        server.stop()
        assert process.returncode is not None
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    finally:
        client.close()
        server.stop()


def test_missing_executable_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install -y redis-server"):
        RedisServer(tmp_path, executable=str(tmp_path / "no-such-redis-server"))


async def test_channel_layer_has_a_unique_prefix(
    channel_layer: Any, channel_layer_config: dict[str, Any]
) -> None:
    assert channel_layer.prefix == channel_layer_config["CONFIG"]["prefix"]
    assert channel_layer.prefix.startswith("test-")
    channel = await channel_layer.new_channel()
    await channel_layer.send(channel, {"type": "hello", "n": 1})
    assert await asyncio.wait_for(channel_layer.receive(channel), 10) == {"type": "hello", "n": 1}


async def test_capture_group_collects_group_sends(
    channel_layer: Any, capture_group: Callable[[str], Awaitable[GroupCapture]]
) -> None:
    group = group_for("realtime:room:1")
    capture = await capture_group(group)
    for n in range(3):
        await channel_layer.group_send(group, {"type": "realtime.broadcast", "n": n})
    messages = await capture.wait_for(3, timeout=10)
    assert [m["n"] for m in messages] == [0, 1, 2]
    assert all(m["type"] == "realtime.broadcast" for m in messages)


async def test_capture_only_sees_its_own_group(
    channel_layer: Any, capture_group: Callable[[str], Awaitable[GroupCapture]]
) -> None:
    mine = await capture_group("realtime.mine")
    other = await capture_group("realtime.other")
    await channel_layer.group_send("realtime.other", {"type": "x", "to": "other"})
    await channel_layer.group_send("realtime.mine", {"type": "x", "to": "mine"})
    assert await mine.wait_for(1, timeout=10) == [{"type": "x", "to": "mine"}]
    assert await other.wait_for(1, timeout=10) == [{"type": "x", "to": "other"}]
    assert len(mine.messages) == 1


async def test_wait_for_times_out_with_what_it_saw(
    channel_layer: Any, capture_group: Callable[[str], Awaitable[GroupCapture]]
) -> None:
    capture = await capture_group("realtime.quiet")
    await channel_layer.group_send("realtime.quiet", {"type": "x", "n": 1})
    with pytest.raises(TimeoutError, match=r"1 of 2 messages within 0.5 s"):
        await capture.wait_for(2, timeout=0.5)


async def test_stop_leaves_the_group(channel_layer: Any) -> None:
    capture = GroupCapture(channel_layer, "realtime.leaving")
    await capture.start()
    await capture.stop()
    assert capture._task is None
    group_key = channel_layer._group_key("realtime.leaving")
    connection = channel_layer.connection(channel_layer.consistent_hash("realtime.leaving"))
    assert await connection.zcard(group_key) == 0


async def test_redis_channel_layers_points_django_at_the_test_redis(
    redis_channel_layers: dict[str, Any],
    capture_group: Callable[[str], Awaitable[GroupCapture]],
) -> None:
    layer = get_channel_layer()
    assert layer is not None
    assert layer.prefix == redis_channel_layers["CONFIG"]["prefix"]
    capture = await capture_group("realtime.django")
    await layer.group_send("realtime.django", {"type": "realtime.system", "ok": True})
    assert await capture.wait_for(1, timeout=10) == [{"type": "realtime.system", "ok": True}]


async def test_wait_for_reports_a_lost_redis_at_once(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        layer = RedisChannelLayer(hosts=[server.url])
        capture = GroupCapture(layer, "realtime.lost")
        await capture.start()
        await layer.group_send("realtime.lost", {"type": "x"})
        await capture.wait_for(1)
        server.stop()
        with pytest.raises(
            RuntimeError, match=r"capturing group 'realtime\.lost' failed"
        ) as excinfo:
            await capture.wait_for(2, timeout=30)
        assert isinstance(excinfo.value.__cause__, redis.ConnectionError)
        with pytest.raises(redis.ConnectionError):
            await capture.stop()  # leaving the group needs the server
    finally:
        server.stop()
