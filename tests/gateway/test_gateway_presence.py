"""Presence through the gateway: Phoenix-style frames, two ASGI processes sharing one state,
a SIGKILLed process's users gone within the bound, and the official client's sync."""

from __future__ import annotations

from typing import Any

from realtime import AsyncRealtimeClient

from supa_realtime.gateway.tokens import mint_token
from supa_realtime.phoenix.message import Message
from supa_realtime.testing.devserver import RawClient, eventually
from tests.gateway.gateway_support import GatewayFactory, connect

TOPIC = "realtime:room:presence"


def track(meta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "presence", "event": "track", "payload": meta}


async def _state_keys(client: RawClient) -> set[str]:
    """Join again with presence enabled and read the presence_state keys."""
    ref = client.next_ref()
    await client.send(
        Message(TOPIC, "phx_join", {"config": {"presence": {"enabled": True}}}, ref, ref)
    )
    state = await client.expect("presence_state", within=5)
    return set(state.payload)


async def test_track_frames_and_diffs(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory()
    async with await connect(server) as tracker, await connect(server) as watcher:
        await tracker.join("room:presence", {"presence": {"key": "alice", "enabled": True}})
        assert await tracker.recv_raw() == '["1",null,"realtime:room:presence","presence_state",{}]'
        await watcher.join("room:presence")
        await tracker.send(Message(TOPIC, "presence", track({"s": "on"}), ref="9", join_ref="1"))
        assert await tracker.recv_raw() == (
            '["1","9","realtime:room:presence","phx_reply",{"status":"ok","response":{}}]'
        )
        own, seen = await tracker.recv(), await watcher.recv()
        assert own.payload == seen.payload
        assert seen.event == "presence_diff"
        assert seen.join_ref is None
        meta = seen.payload["joins"]["alice"]["metas"][0]
        assert meta["s"] == "on"
        assert seen.payload["leaves"] == {}
        await tracker.push(TOPIC, "presence", track({"s": "away"}))
        await tracker.expect("phx_reply")
        update = await watcher.expect("presence_diff")
        assert update.payload["joins"]["alice"]["metas"][0]["phx_ref_prev"] == meta["phx_ref"]
        assert update.payload["leaves"]["alice"]["metas"][0]["phx_ref"] == meta["phx_ref"]
        await tracker.push(TOPIC, "phx_leave", {})
        gone = await watcher.expect("presence_diff")
        assert list(gone.payload["leaves"]) == ["alice"]


async def test_two_processes_share_presence_and_a_killed_one_leaves_no_ghosts(
    gateway_factory: GatewayFactory,
) -> None:
    first = await gateway_factory()
    second = await gateway_factory()
    async with await connect(first) as watcher:
        await watcher.join("room:presence")
        one = await connect(first)
        two = await connect(second)
        try:
            for client, key in ((one, "one"), (two, "two")):
                await client.join("room:presence", {"presence": {"key": key}})
                await client.push(TOPIC, "presence", track({"k": key}))
                await client.expect("phx_reply")
            # both processes' diffs reach a socket of the first process
            diffs = [await watcher.expect("presence_diff") for _ in range(2)]
            assert {k for d in diffs for k in d.payload["joins"]} == {"one", "two"}
            async with await connect(second) as late:
                assert await _state_keys(late) == {"one", "two"}
            second.kill()
            # TTL 2 s + sweep 0.5 s in these tests: the leave diff comes from the sweep
            leave = await watcher.expect("presence_diff", within=15)
            assert list(leave.payload["leaves"]) == ["two"]
            async with await connect(first) as late:
                assert await _state_keys(late) == {"one"}
        finally:
            await one.close()
            await two.close()


async def test_official_client_sees_presence_of_a_raw_client(
    gateway_factory: GatewayFactory,
) -> None:
    server = await gateway_factory()
    token = mint_token(None, topics={"room:*": ["join"]})
    watcher = AsyncRealtimeClient(server.url, token, auto_reconnect=False)
    syncs: list[int] = []
    try:
        room = watcher.channel("room:presence")
        room.on_presence_sync(lambda: syncs.append(1))
        await room.subscribe()
        await eventually(lambda: syncs)
        async with await connect(server) as tracker:
            await tracker.join("room:presence", {"presence": {"key": "bob"}})
            await tracker.push(TOPIC, "presence", track({"status": "online"}))
            await eventually(lambda: "bob" in room.presence_state())
            bob: Any = room.presence_state()["bob"][0]
            assert bob["status"] == "online"
        await eventually(lambda: "bob" not in room.presence_state())
    finally:
        await watcher.close()


async def test_presence_needs_the_presence_action(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory(TOPICS={"room:*": {"join": "any"}})
    async with await connect(server) as client:
        await client.join("room:presence")
        ref = await client.push(TOPIC, "presence", track({"a": 1}))
        reply = await client.expect("phx_reply", ref=ref)
        assert reply.payload["status"] == "error"
        assert reply.payload["response"]["reason"].startswith("Unauthorized: ")
