"""The whole path: a Django-side client on the gateway (daphne), the worker, and a Supabase-side
client on the local Realtime server, both the official ``realtime`` client.

A topic matching ``GATEWAY["BRIDGE"]`` is joined upstream on demand; broadcasts cross in both
directions exactly once; the Supabase-side client's presence is visible to the Django client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from realtime import AsyncRealtimeClient

from supa_realtime.backoff import Backoff
from supa_realtime.devserver import DevServer
from supa_realtime.outbox import OutboxKeys
from supa_realtime.testing.devserver import eventually
from supa_realtime.testing.worker import running_worker
from supa_realtime.worker import Worker
from tests.gateway.gateway_support import GatewayFactory, GatewayServer

TOPIC = "realtime:room:e2e"


@contextlib.asynccontextmanager
async def official(url: str, key: str) -> AsyncIterator[AsyncRealtimeClient]:
    client = AsyncRealtimeClient(url, key)
    await client.connect()
    try:
        yield client
    finally:
        await asyncio.wait_for(client.close(), 10)


class Peer:
    """One official client joined to the topic, recording broadcasts and presence syncs."""

    def __init__(self, client: AsyncRealtimeClient, presence_key: str) -> None:
        self.received: list[Any] = []
        self.channel = client.channel(
            "room:e2e", {"config": {"presence": {"key": presence_key, "enabled": True}}}
        )
        self.channel.on_broadcast("chat", self.received.append)
        self.channel.on_presence_sync(lambda: None)

    async def join(self) -> None:
        joined = asyncio.Event()

        def status(state: Any, error: Any) -> None:
            if str(state).endswith("SUBSCRIBED"):
                joined.set()

        await self.channel.subscribe(status)
        await asyncio.wait_for(joined.wait(), 10)

    def texts(self) -> list[str]:
        return [m["payload"]["text"] for m in self.received]


async def test_broadcasts_cross_once_each_way_and_supabase_presence_is_seen(
    realtime_server: DevServer,
    gateway_factory: GatewayFactory,
    gateway_settings: dict[str, Any],
    channel_layer: Any,
    aredis: Any,
) -> None:
    gateway_settings["URL"] = realtime_server.http_url
    gateway_settings["KEY"] = realtime_server.service_role_key
    server: GatewayServer = await gateway_factory(
        BRIDGE=["room:*"], BRIDGE_REFRESH=1.0, BRIDGE_LINGER=0.2
    )
    worker = Worker(
        url=realtime_server.http_url,
        key=realtime_server.service_role_key,
        subscriptions=(),
        layer=channel_layer,
        reconnect=Backoff(initial=0.05, max_delay=0.2),
        redis=aredis,
        keys=OutboxKeys(gateway_settings["REDIS_PREFIX"]),
        lease_ttl=2.0,
        bridge=True,
        bridge_ttl=3.0,
        bridge_linger=0.2,
        presence_ttl=5.0,
    )
    async with (
        running_worker(worker),
        official(realtime_server.ws_url, realtime_server.anon_key) as supabase_side,
        official(server.url, "") as django_side,
        official(server.url, "") as late_django_side,
    ):
        # Ada was online on the Supabase side before any Django client asked for the topic.
        upstream = Peer(supabase_side, "mobile-ada")
        await upstream.join()
        await upstream.channel.track({"name": "Ada (mobile)"})

        local = Peer(django_side, "browser-bob")
        await local.join()
        # The gateway asked for the topic; the worker joined it upstream.
        await eventually(lambda: realtime_server.subscribers(TOPIC) == 2, within=15)

        # Bob joined before the worker knew of Ada: she appears in his list live, from the
        # difference the worker relays after the upstream presence_state.
        await eventually(lambda: "mobile-ada" in local.channel.presence.state, within=15)

        # Someone joining on Django later sees Ada in its presence state: the worker mirrors
        # Supabase-side presence into the store the gateway merges.
        late = Peer(late_django_side, "browser-cy")
        await late.join()
        await eventually(lambda: "mobile-ada" in late.channel.presence.state, within=15)

        # Presence changes on the Supabase side reach Django clients live.
        await upstream.channel.track({"name": "Ada (mobile)", "typing": True})
        await eventually(
            lambda: any(
                m.get("typing") for m in local.channel.presence.state.get("mobile-ada", [])
            ),
            within=15,
        )

        await local.channel.send_broadcast("chat", {"text": "from django"})
        await eventually(lambda: upstream.texts() == ["from django"], within=15)
        await upstream.channel.send_broadcast("chat", {"text": "from supabase"})
        await eventually(lambda: local.texts() == ["from supabase"], within=15)

        # Once each: a marker sent after the first message arrives after any duplicate of it
        # would have (one socket, in order), so counting after the marker is conclusive.
        await local.channel.send_broadcast("chat", {"text": "marker"})
        await eventually(lambda: "marker" in upstream.texts(), within=15)
        await upstream.channel.send_broadcast("chat", {"text": "marker-up"})
        await eventually(lambda: "marker-up" in local.texts(), within=15)
        assert upstream.texts() == ["from django", "marker"]
        assert local.texts() == ["from supabase", "marker-up"]
        # The other Django client got both broadcasts too, once each.
        await eventually(lambda: "marker-up" in late.texts(), within=15)
        assert late.texts() == ["from django", "from supabase", "marker", "marker-up"]
    assert worker.stats.bridge_joins == 1
