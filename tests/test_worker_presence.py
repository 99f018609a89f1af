"""The worker mirrors Supabase-side presence into the gateway's presence store."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
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
ROOT = Path(__file__).resolve().parent.parent


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


async def track(client: AsyncRealtimeClient, key: str, name: str) -> None:
    channel = client.channel("room1", {"config": {"presence": {"key": key, "enabled": True}}})
    channel.on_presence_sync(lambda: None)
    await asyncio.wait_for(channel.subscribe(), 10)
    await asyncio.wait_for(channel.track({"name": name}), 10)


async def test_refreshed_mirror_outlives_its_ttl(
    realtime_server: DevServer, channel_layer: Any, aredis: Any, redis_prefix: str
) -> None:
    store = PresenceStore(aredis, None, prefix=redis_prefix)
    worker = make_worker(realtime_server, channel_layer, aredis, redis_prefix, presence_ttl=0.6)
    client = AsyncRealtimeClient(realtime_server.ws_url, realtime_server.anon_key)
    await asyncio.wait_for(client.connect(), 10)
    try:
        async with running(worker):
            await track(client, "cy", "Cy")

            async def seen() -> bool:
                return names(await store.state(TOPIC)) == {"cy": ["Cy"]}

            await eventually(seen)
            # Several refreshes later (each a third of the TTL), it is still there.
            first = worker.stats.presence_refreshes
            await eventually(lambda: worker.stats.presence_refreshes >= first + 4)
            assert await seen()
    finally:
        await asyncio.wait_for(client.close(), 10)


def start_worker_process(
    server: DevServer, config: dict[str, Any], prefix: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_presence_settings",
        "SUPABASE_URL": server.http_url,
        "SUPABASE_KEY": server.service_role_key,
        "REDIS_URL": config["hosts"][0]["address"],
        "CHANNEL_LAYER_PREFIX": config["prefix"],
        "SUPA_REALTIME_REDIS_PREFIX": prefix,
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "realtime_worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_mirror_of_a_killed_worker_process_expires(
    realtime_server: DevServer,
    channel_layer_config: dict[str, Any],
    aredis: Any,
    redis_prefix: str,
) -> None:
    proc = start_worker_process(realtime_server, channel_layer_config["CONFIG"], redis_prefix)
    store = PresenceStore(aredis, None, prefix=redis_prefix)
    client = AsyncRealtimeClient(realtime_server.ws_url, realtime_server.anon_key)
    try:
        await eventually(lambda: realtime_server.subscribers(TOPIC) >= 1, within=30)
        await asyncio.wait_for(client.connect(), 10)
        await track(client, "dee", "Dee")

        async def seen() -> bool:
            return names(await store.state(TOPIC)) == {"dee": ["Dee"]}

        await eventually(seen)
        proc.send_signal(signal.SIGKILL)  # no clean stop: nothing removes the mirror
        await asyncio.to_thread(proc.wait, 30)

        async def gone() -> bool:
            return await store.state(TOPIC) == {}

        # GATEWAY["PRESENCE_TTL"] is 1 s in these settings; the client is still tracked.
        await eventually(gone, within=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await asyncio.wait_for(client.close(), 10)
