"""Dynamic bridging: the worker joins topics upstream on the gateway's interest."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from realtime import AsyncRealtimeClient

from supa_realtime import events
from supa_realtime.backoff import Backoff
from supa_realtime.conf import Subscription
from supa_realtime.devserver import DevServer
from supa_realtime.gateway.hub import BRIDGE_CHANNEL, BRIDGE_TYPE
from supa_realtime.groups import group_for
from supa_realtime.outbox import APPEND_LUA, OutboxKeys, append_args
from supa_realtime.testing import GroupCapture
from supa_realtime.testing.devserver import eventually
from supa_realtime.testing.worker import running_worker
from supa_realtime.worker import Worker

TOPIC = "realtime:lobby"


def make_worker(server: DevServer, layer: Any, *subs: Subscription, **kwargs: Any) -> Worker:
    return Worker(
        url=server.http_url,
        key=server.service_role_key,
        subscriptions=subs,
        layer=layer,
        reconnect=Backoff(initial=0.05, max_delay=0.2),
        bridge=True,
        **kwargs,
    )


async def announce(layer: Any, interest: bool, process: str = "p1", topic: str = TOPIC) -> None:
    """What the gateway's hub sends (see supa_realtime.gateway.hub)."""
    message = {"type": BRIDGE_TYPE, "topic": topic, "interest": interest, "process": process}
    await layer.send(BRIDGE_CHANNEL, message)


async def test_interest_joins_relays_and_withdrawal_leaves_after_linger(
    realtime_server: DevServer, channel_layer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="supa_realtime.worker")
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    worker = make_worker(realtime_server, channel_layer, bridge_linger=0.2)
    try:
        async with running_worker(worker):
            assert realtime_server.subscribers(TOPIC) == 0
            await announce(channel_layer, True)
            await eventually(lambda: realtime_server.subscribers(TOPIC) == 1)
            client = AsyncRealtimeClient(realtime_server.ws_url, realtime_server.anon_key)
            await asyncio.wait_for(client.connect(), 10)
            try:
                channel = client.channel("lobby")
                await asyncio.wait_for(channel.subscribe(), 10)
                await eventually(lambda: realtime_server.subscribers(TOPIC) == 2)
                await asyncio.wait_for(channel.send_broadcast("chat", {"text": "hi"}), 10)
                # The join with presence brings a presence_state first.
                messages = await capture.wait_for(2)
            finally:
                await asyncio.wait_for(client.close(), 10)
            await eventually(lambda: realtime_server.subscribers(TOPIC) == 1)
            # Repeated interest (the hub's refresh) does not join twice.
            await announce(channel_layer, True)
            await announce(channel_layer, False)
            await eventually(lambda: realtime_server.subscribers(TOPIC) == 0)
            assert worker.stats.bridge_joins == 1
            await eventually(lambda: worker.stats.bridge_leaves == 1)
    finally:
        await capture.stop()
    assert [m["type"] for m in messages] == [events.PRESENCE_STATE, events.BROADCAST]
    broadcasts = [m for m in messages if m["type"] == events.BROADCAST]
    assert broadcasts == [
        {"type": events.BROADCAST, "topic": TOPIC, "event": "chat", "payload": {"text": "hi"}}
    ]
    assert f"bridge: joined {TOPIC}" in caplog.text
    assert f"bridge: left {TOPIC}" in caplog.text


async def test_interest_of_a_second_process_keeps_the_topic(
    realtime_server: DevServer, channel_layer: Any
) -> None:
    worker = make_worker(realtime_server, channel_layer, bridge_linger=0.1)
    async with running_worker(worker):
        await announce(channel_layer, True, "p1")
        await announce(channel_layer, True, "p2")
        await eventually(lambda: realtime_server.subscribers(TOPIC) == 1)
        await announce(channel_layer, False, "p1")
        # Once p1's withdrawal is handled, p2 alone still holds the topic.
        await eventually(lambda: worker.interest.processes(TOPIC, 0) == {"p2"})
        assert TOPIC in worker._bridged
        await announce(channel_layer, False, "p2")
        await eventually(lambda: realtime_server.subscribers(TOPIC) == 0)


async def test_expired_interest_of_a_dead_process_leaves(
    realtime_server: DevServer, channel_layer: Any
) -> None:
    worker = make_worker(realtime_server, channel_layer, bridge_ttl=0.3, bridge_linger=0.1)
    async with running_worker(worker):
        await announce(channel_layer, True, "dead")
        await eventually(lambda: realtime_server.subscribers(TOPIC) == 1)
        # Never refreshed, never withdrawn.
        await eventually(lambda: realtime_server.subscribers(TOPIC) == 0)
        await eventually(lambda: worker.stats.bridge_leaves == 1)


async def test_channel_limit_refuses_with_an_error(
    realtime_server: DevServer, channel_layer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    worker = make_worker(
        realtime_server, channel_layer, Subscription(topic="room1"), max_channels=1
    )
    async with running_worker(worker):
        await eventually(lambda: realtime_server.subscribers("realtime:room1") == 1)
        await announce(channel_layer, True)
        await eventually(lambda: worker.stats.bridge_refused == 1)
        assert realtime_server.subscribers(TOPIC) == 0
        await announce(channel_layer, True)
        await eventually(lambda: worker.stats.bridge_refused == 2)
    refusals = [r for r in caplog.records if r.levelno == logging.ERROR and TOPIC in r.message]
    assert len(refusals) == 1  # said once per topic, counted every time
    assert "the limit is 1" in refusals[0].message
    assert realtime_server.subscribers(TOPIC) == 0


async def test_outbox_channel_of_the_topic_is_adopted_not_joined_twice(
    realtime_server: DevServer, channel_layer: Any, aredis: Any, redis_prefix: str
) -> None:
    keys = OutboxKeys(redis_prefix)
    worker = make_worker(
        realtime_server, channel_layer, redis=aredis, keys=keys, lease_ttl=2.0, bridge_linger=0.1
    )
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    try:
        async with running_worker(worker):
            args = append_args(
                TOPIC, "note", b'{"n": 1}', False, retention_seconds=60, retention_messages=100
            )
            await aredis.eval(APPEND_LUA, 2, keys.stream, keys.dropped, *args)
            assert worker.outbox is not None
            await eventually(lambda: worker.outbox is not None and worker.outbox.stats.sent == 1)
            assert realtime_server.subscribers(TOPIC) == 1  # the outbox's channel
            await announce(channel_layer, True)
            await eventually(lambda: worker.stats.bridge_joins == 1)
            assert realtime_server.subscribers(TOPIC) == 1
            await realtime_server.broadcast("lobby", "chat", {"n": 2})
            [message] = await capture.wait_for(1)
            assert (message["event"], message["payload"]) == ("chat", {"n": 2})
            await announce(channel_layer, False)
            await eventually(lambda: realtime_server.subscribers(TOPIC) == 0)
    finally:
        await capture.stop()
