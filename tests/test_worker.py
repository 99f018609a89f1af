"""The relay, in process: local Realtime server → worker → real Redis channel layer group."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from realtime import AsyncRealtimeClient

from supa_realtime import events, signals
from supa_realtime.backoff import Backoff
from supa_realtime.conf import PostgresChangesBinding, Subscription
from supa_realtime.devserver import DevServer
from supa_realtime.groups import group_for
from supa_realtime.testing import GroupCapture
from supa_realtime.testing.devserver import eventually
from supa_realtime.testing.worker import running_worker
from supa_realtime.worker import Worker, WorkerStats

TOPIC = "realtime:room1"
FAST_RECONNECT = Backoff(initial=0.05, max_delay=0.2)

CHANGE = {
    "schema": "public",
    "table": "todos",
    "commit_timestamp": "2026-01-01T00:00:00.000Z",
    "type": "INSERT",
    "columns": [{"name": "id", "type": "int8"}, {"name": "title", "type": "text"}],
    "record": {"id": 7, "title": "buy milk"},
    "errors": None,
}


def running(worker: Worker) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    return running_worker(worker, wait_ready=False)


def make_worker(server: DevServer, layer: Any, *subs: Subscription, **kwargs: Any) -> Worker:
    return Worker(
        url=server.http_url,
        key=server.service_role_key,
        subscriptions=subs or (Subscription(topic="room1"),),
        layer=layer,
        reconnect=FAST_RECONNECT,
        **kwargs,
    )


async def joined(server: DevServer, topic: str = TOPIC, count: int = 1) -> None:
    await eventually(lambda: server.subscribers(topic) >= count)


@contextlib.asynccontextmanager
async def official_client(server: DevServer) -> AsyncIterator[AsyncRealtimeClient]:
    client = AsyncRealtimeClient(server.ws_url, server.anon_key)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


async def official_channel(client: AsyncRealtimeClient, name: str = "room1") -> Any:
    subscribed = asyncio.Event()
    channel = client.channel(name)

    def on_status(status: Any, err: Any) -> None:
        if str(status).endswith("SUBSCRIBED"):
            subscribed.set()

    await channel.subscribe(on_status)
    await asyncio.wait_for(subscribed.wait(), 5)
    return channel


async def test_official_client_broadcast_reaches_group(
    realtime_server: DevServer, channel_layer: Any
) -> None:
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    try:
        async with running(make_worker(realtime_server, channel_layer)):
            await joined(realtime_server)
            async with official_client(realtime_server) as client:
                channel = await official_channel(client)
                await channel.send_broadcast("chat", {"text": "hello"})
                messages = await capture.wait_for(1)
    finally:
        await capture.stop()
    broadcast = [m for m in messages if m["type"] == events.BROADCAST]
    assert broadcast == [
        {
            "type": "realtime.broadcast",
            "topic": TOPIC,
            "event": "chat",
            "payload": {"text": "hello"},
        }
    ]


async def test_presence_state_then_diff_for_a_join(
    realtime_server: DevServer, channel_layer: Any
) -> None:
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    try:
        sub = Subscription(topic="room1", presence=True)
        async with running(make_worker(realtime_server, channel_layer, sub)):
            state = (await capture.wait_for(1))[0]
            assert state == {"type": "realtime.presence_state", "topic": TOPIC, "state": {}}
            async with official_client(realtime_server) as client:
                channel = client.channel(
                    "room1", {"config": {"presence": {"key": "ada", "enabled": True}}}
                )
                channel.on_presence_sync(lambda: None)
                await channel.subscribe()
                await eventually(lambda: realtime_server.subscribers(TOPIC) >= 2)
                await channel.track({"name": "Ada"})
                diff = (await capture.wait_for(2))[1]
    finally:
        await capture.stop()
    assert diff["type"] == "realtime.presence_diff"
    assert diff["leaves"] == {}
    [meta] = diff["joins"]["ada"]["metas"]
    assert meta["name"] == "Ada"
    assert meta["phx_ref"]


async def test_database_change_relayed_and_signal_fired(
    realtime_server: DevServer, channel_layer: Any
) -> None:
    received: list[events.PostgresChange] = []

    def receiver(sender: Any, event: events.PostgresChange, **kwargs: Any) -> None:
        received.append(event)

    sub = Subscription(
        topic="room1",
        postgres_changes=(PostgresChangesBinding(event="INSERT", table="todos"),),
    )
    signals.postgres_change.connect(receiver)
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    try:
        async with running(make_worker(realtime_server, channel_layer, sub)):
            await joined(realtime_server)
            # The "Subscribed to PostgreSQL" system message comes first.
            [system] = await capture.wait_for(1)
            assert (system["type"], system["message"]) == (
                events.SYSTEM,
                "Subscribed to PostgreSQL",
            )
            assert await realtime_server.emit_change(CHANGE) == 1
            messages = await capture.wait_for(2)
            await eventually(lambda: received)
    finally:
        signals.postgres_change.disconnect(receiver)
        await capture.stop()
    changes = [m for m in messages if m["type"] == events.POSTGRES_CHANGE]
    assert len(changes) == 1
    assert changes[0]["data"] == CHANGE
    assert len(changes[0]["ids"]) == 1
    [event] = received
    assert (event.type, event.schema, event.table, event.record) == (
        "INSERT",
        "public",
        "todos",
        {"id": 7, "title": "buy milk"},
    )
    assert event.raw.event == "postgres_changes"


async def test_raising_receiver_is_logged_and_relay_goes_on(
    realtime_server: DevServer, channel_layer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def bad_receiver(sender: Any, event: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    signals.broadcast_received.connect(bad_receiver)
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    worker = make_worker(realtime_server, channel_layer, Subscription(topic="room1"))
    try:
        async with running(worker):
            await joined(realtime_server)
            for n in range(3):
                await realtime_server.broadcast("room1", "tick", {"n": n})
            messages = await capture.wait_for(3)
            await eventually(lambda: worker.stats.receiver_errors >= 3)
    finally:
        signals.broadcast_received.disconnect(bad_receiver)
        await capture.stop()
    assert [m["payload"] for m in messages] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert "receiver bug" in caplog.text
    assert "the relay goes on" in caplog.text


async def test_broadcast_event_filter(realtime_server: DevServer, channel_layer: Any) -> None:
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    sub = Subscription(topic="room1", broadcast=("wanted",))
    try:
        async with running(make_worker(realtime_server, channel_layer, sub)):
            await joined(realtime_server)
            await realtime_server.broadcast("room1", "unwanted", {"n": 1})
            await realtime_server.broadcast("room1", "wanted", {"n": 2})
            messages = await capture.wait_for(1)
    finally:
        await capture.stop()
    assert [m["event"] for m in messages] == ["wanted"]


@pytest.mark.parametrize("code", [1000, 1001, 1011, 1012])
async def test_reconnect_sends_gap_before_newer_events(
    realtime_server: DevServer, channel_layer: Any, code: int
) -> None:
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    worker = make_worker(realtime_server, channel_layer, Subscription(topic="room1"))
    try:
        async with running(worker):
            await joined(realtime_server)
            await realtime_server.broadcast("room1", "before", {})
            await capture.wait_for(1)
            await realtime_server.faults.close_all(code, "test")
            await eventually(lambda: worker.stats.reconnects >= 1)
            await joined(realtime_server)
            await realtime_server.broadcast("room1", "after", {})
            messages = await capture.wait_for(3)
    finally:
        await capture.stop()
    before, gap, after = messages
    assert before["event"] == "before"
    assert gap["type"] == "realtime.system"
    assert (gap["extension"], gap["status"]) == ("supa_realtime", "gap")
    assert gap["gap_start"] <= gap["gap_end"]
    assert after["event"] == "after"


async def test_many_frames_arrive_in_order_batched(
    realtime_server: DevServer, channel_layer: Any
) -> None:
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    worker = make_worker(realtime_server, channel_layer, Subscription(topic="room1"))
    n = 2000
    try:
        async with running(worker):
            await joined(realtime_server)
            for i in range(n):
                await realtime_server.broadcast("room1", "seq", {"i": i})
            await eventually(lambda: worker.stats.frames_relayed >= n, within=30)
            messages = await capture.wait_for(n, timeout=30)
    finally:
        await capture.stop()
    seen = [m["payload"]["i"] for m in messages]
    assert seen == list(range(n))
    assert worker.stats.deliveries_dropped == 0
    assert isinstance(worker.stats, WorkerStats)


def test_worker_requires_a_layer() -> None:
    with pytest.raises(ValueError, match="channel layer"):
        Worker(url="http://127.0.0.1:1", key="k", subscriptions=(), layer=None)


async def test_backpressure_pauses_reading_and_loses_nothing(
    realtime_server: DevServer, channel_layer: Any
) -> None:
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    worker = make_worker(realtime_server, channel_layer, Subscription(topic="room1"), max_pending=4)
    n = 300
    try:
        async with running(worker):
            await joined(realtime_server)
            for i in range(n):
                await realtime_server.broadcast("room1", "seq", {"i": i})
            messages = await capture.wait_for(n, timeout=30)
    finally:
        await capture.stop()
    assert [m["payload"]["i"] for m in messages] == list(range(n))
    assert worker.stats.backpressure_waits > 0
    assert worker.stats.deliveries_dropped == 0
