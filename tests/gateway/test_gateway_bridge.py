"""Hooks for the worker: bridging interest on the control channel, browsers' broadcasts on
bridged topics queued for Supabase once, and broadcasts across ASGI processes."""

from __future__ import annotations

import asyncio
from typing import Any

from supa_realtime.gateway.hub import BRIDGE_CHANNEL
from supa_realtime.outbox import Entry, OutboxKeys
from tests.gateway.gateway_support import GatewayFactory, connect


async def _next_bridge(layer: Any) -> dict[str, Any]:
    async with asyncio.timeout(10):
        message: dict[str, Any] = await layer.receive(BRIDGE_CHANNEL)
        return message


async def test_interest_on_first_join_and_last_leave(
    gateway_factory: GatewayFactory, channel_layer: Any
) -> None:
    server = await gateway_factory(
        BRIDGE=["bridged:*"], BRIDGE_REFRESH=3600, TOPICS={"*": {"join": "any"}}
    )
    async with await connect(server) as one, await connect(server) as two:
        await one.join("room:not-bridged")
        await one.join("bridged:1")
        first = await _next_bridge(channel_layer)
        assert first["type"] == "realtime.bridge"
        assert first["topic"] == "realtime:bridged:1"
        assert first["interest"] is True
        assert isinstance(first["process"], str)
        await two.join("bridged:1")
        await one.push("realtime:bridged:1", "phx_leave", {})
        await one.expect("phx_close")
        await two.close()  # the last local subscriber goes away
        last = await _next_bridge(channel_layer)
        assert (last["topic"], last["interest"], last["process"]) == (
            "realtime:bridged:1",
            False,
            first["process"],
        )


async def test_browser_broadcast_on_a_bridged_topic_is_queued_once(
    gateway_factory: GatewayFactory, gateway_settings: dict[str, Any], aredis: Any
) -> None:
    server = await gateway_factory(
        BRIDGE=["bridged:*"], TOPICS={"*": {"join": "any", "broadcast": "any"}}
    )
    keys = OutboxKeys(gateway_settings["REDIS_PREFIX"])
    async with await connect(server) as sender, await connect(server) as receiver:
        await sender.join("bridged:2", {"broadcast": {"ack": True}})
        await receiver.join("bridged:2")
        await sender.join("local:2", {"broadcast": {"ack": True}})
        for topic in ("realtime:bridged:2", "realtime:local:2"):
            ref = await sender.push(
                topic, "broadcast", {"type": "broadcast", "event": "chat", "payload": {"m": 1}}
            )
            await sender.expect("phx_reply", ref=ref)
        got = await receiver.expect("broadcast")
        assert got.payload == {"type": "broadcast", "event": "chat", "payload": {"m": 1}}
        entries = await aredis.xrange(keys.stream)
        assert len(entries) == 1
        entry = Entry.from_fields(*entries[0])
        assert (entry.topic, entry.event) == ("realtime:bridged:2", "chat")


async def test_broadcast_crosses_processes_once(gateway_factory: GatewayFactory) -> None:
    first = await gateway_factory()
    second = await gateway_factory()
    async with await connect(first) as sender, await connect(second) as receiver:
        await sender.join("room:x")
        await receiver.join("room:x")
        await sender.push(
            "realtime:room:x", "broadcast", {"type": "broadcast", "event": "e", "payload": {}}
        )
        assert (await receiver.expect("broadcast")).payload["event"] == "e"
        ref = await receiver.push("phoenix", "heartbeat", {})
        assert (await receiver.recv()).ref == ref  # not a second copy
        ref = await sender.push("phoenix", "heartbeat", {})
        assert (await sender.recv()).ref == ref  # self: false
