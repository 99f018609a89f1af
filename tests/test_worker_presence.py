"""The worker mirrors Supabase-side presence into the gateway's presence store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from realtime import AsyncRealtimeClient

from supa_realtime.backoff import Backoff
from supa_realtime.conf import Subscription
from supa_realtime.devserver import DevServer
from supa_realtime.outbox import OutboxKeys
from supa_realtime.presence import PresenceStore
from supa_realtime.testing.devserver import eventually
from supa_realtime.worker import Worker

TOPIC = "realtime:room1"


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(worker.ready.wait(), 15)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


def make_worker(server: DevServer, layer: Any, aredis: Any, prefix: str, **kwargs: Any) -> Worker:
    return Worker(
        url=server.http_url,
        key=server.service_role_key,
        subscriptions=(Subscription(topic="room1", presence=True),),
        layer=layer,
        reconnect=Backoff(initial=0.05, max_delay=0.2),
        redis=aredis,
        keys=OutboxKeys(prefix),
        lease_ttl=2.0,
        **kwargs,
    )


def names(state: dict[str, Any]) -> dict[str, list[Any]]:
    return {key: [m.get("name") for m in value["metas"]] for key, value in state.items()}


async def test_supabase_presence_is_mirrored_then_removed(
    realtime_server: DevServer, channel_layer: Any, aredis: Any, redis_prefix: str
) -> None:
    store = PresenceStore(aredis, None, prefix=redis_prefix)
    worker = make_worker(realtime_server, channel_layer, aredis, redis_prefix, presence_ttl=20.0)
    async with running(worker):
        client = AsyncRealtimeClient(realtime_server.ws_url, realtime_server.anon_key)
        await asyncio.wait_for(client.connect(), 10)
        try:
            channel = client.channel(
                "room1", {"config": {"presence": {"key": "ada", "enabled": True}}}
            )
            channel.on_presence_sync(lambda: None)
            await asyncio.wait_for(channel.subscribe(), 10)
            await eventually(lambda: realtime_server.subscribers(TOPIC) >= 2)
            await asyncio.wait_for(channel.track({"name": "Ada"}), 10)

            async def seen() -> bool:
                return names(await store.state(TOPIC)) == {"ada": ["Ada"]}

            await eventually(seen)
            # The mirror expires unless the worker keeps writing it.
            ttl_ms = await aredis.pttl(store.keys.upstream(TOPIC))
            assert 0 < ttl_ms <= 20_000

            await asyncio.wait_for(channel.untrack(), 10)

            async def gone() -> bool:
                return await store.state(TOPIC) == {}

            await eventually(gone)
            # state, join diff, leave diff
            await eventually(lambda: worker.stats.presence_writes >= 3)
            assert worker.stats.presence_errors == 0
        finally:
            await asyncio.wait_for(client.close(), 10)


async def test_mirror_of_a_client_that_stays_is_removed_when_the_worker_stops(
    realtime_server: DevServer, channel_layer: Any, aredis: Any, redis_prefix: str
) -> None:
    store = PresenceStore(aredis, None, prefix=redis_prefix)
    worker = make_worker(realtime_server, channel_layer, aredis, redis_prefix)
    client = AsyncRealtimeClient(realtime_server.ws_url, realtime_server.anon_key)
    await asyncio.wait_for(client.connect(), 10)
    try:
        async with running(worker):
            channel = client.channel(
                "room1", {"config": {"presence": {"key": "bob", "enabled": True}}}
            )
            channel.on_presence_sync(lambda: None)
            await asyncio.wait_for(channel.subscribe(), 10)
            await asyncio.wait_for(channel.track({"name": "Bob"}), 10)

            async def seen() -> bool:
                return names(await store.state(TOPIC)) == {"bob": ["Bob"]}

            await eventually(seen)
        assert await aredis.exists(store.keys.upstream(TOPIC)) == 0
    finally:
        await asyncio.wait_for(client.close(), 10)
