"""Server-side presence: track, update, untrack, leave, limits, official client sync (§6)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from realtime import AsyncRealtimeClient

from supa_realtime.devserver import DevServer, Limits
from supa_realtime.devserver.presence import PresenceRegistry, new_phx_ref
from supa_realtime.phoenix.message import Message
from supa_realtime.testing.devserver import RawClient, eventually

TOPIC = "realtime:room1"
PHX_REF = re.compile(r"[A-Za-z0-9_-]{16}")


def track(meta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "presence", "event": "track", "payload": meta}


def test_phx_ref_shape() -> None:
    refs = {new_phx_ref() for _ in range(100)}
    assert len(refs) == 100
    assert all(PHX_REF.fullmatch(r) for r in refs)


def test_registry_update_same_payload_and_untrack() -> None:
    registry = PresenceRegistry()
    group = (False, "room1")
    first = registry.track(group, "k", 1, {"s": "online"})
    assert first is not None
    meta = first["joins"]["k"]["metas"][0]
    assert first["leaves"] == {}
    assert registry.track(group, "k", 1, {"s": "online"}) is None
    update = registry.track(group, "k", 1, {"s": "away"})
    assert update is not None
    new = update["joins"]["k"]["metas"][0]
    assert new["phx_ref_prev"] == meta["phx_ref"]
    assert update["leaves"] == {"k": {"metas": [meta]}}
    assert registry.state(group) == {"k": {"metas": [new]}}
    assert registry.untrack(group, "k", 1) == {"joins": {}, "leaves": {"k": {"metas": [new]}}}
    assert registry.untrack(group, "k", 1) is None
    assert registry.state(group) == {}


async def test_track_update_untrack_frames(realtime_server: DevServer) -> None:
    async with (
        await RawClient.connect(realtime_server) as tracker,
        await RawClient.connect(realtime_server) as watcher,
    ):
        reply = await tracker.join(
            TOPIC, {"presence": {"enabled": True, "key": "user-42"}}, join_ref="3"
        )
        assert reply.status == "ok"
        assert await tracker.recv_raw() == '["3",null,"realtime:room1","presence_state",{}]'
        await watcher.join(TOPIC)  # presence not enabled: no state, but diffs still come

        await tracker.send(
            Message(TOPIC, "presence", track({"user_id": 42}), ref="9", join_ref="3")
        )
        assert await tracker.recv_raw() == (
            '["3","9","realtime:room1","phx_reply",{"status":"ok","response":{}}]'
        )
        own, seen = await tracker.recv(), await watcher.recv()
        assert own.payload == seen.payload
        assert (seen.event, seen.ref, seen.join_ref) == ("presence_diff", None, None)
        joined = seen.payload["joins"]["user-42"]["metas"][0]
        assert seen.payload["leaves"] == {}
        assert joined["user_id"] == 42
        assert PHX_REF.fullmatch(joined["phx_ref"])

        # the same payload again: ok and no diff
        ref = await tracker.push(TOPIC, "presence", track({"user_id": 42}))
        assert (await tracker.expect("phx_reply")).ref == ref

        # an update: one diff with a join (phx_ref_prev) and a leave
        await tracker.push(
            TOPIC, "presence", {"event": "TRACK", "payload": {"user_id": 42, "away": True}}
        )
        update = await watcher.expect("presence_diff")
        new_meta = update.payload["joins"]["user-42"]["metas"][0]
        assert new_meta["phx_ref_prev"] == joined["phx_ref"]
        assert update.payload["leaves"] == {"user-42": {"metas": [joined]}}

        await tracker.push(TOPIC, "presence", {"event": "untrack"})
        leave = await watcher.expect("presence_diff")
        assert leave.payload == {"joins": {}, "leaves": {"user-42": {"metas": [new_meta]}}}
        assert realtime_server.presence_state("room1") == {}


async def test_state_on_join_and_leave_on_disconnect(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as watcher:
        tracker = await RawClient.connect(realtime_server)
        await tracker.join(TOPIC, {"presence": {"key": ""}})
        await tracker.push(TOPIC, "presence", {"event": "track", "payload": {"n": 1}})
        await tracker.expect("phx_reply")
        await watcher.join(TOPIC, {"presence": {"enabled": True}})
        state = await watcher.expect("presence_state")
        (key,) = state.payload
        assert uuid.UUID(key).version == 1  # an empty key is a fresh UUIDv1
        assert state.payload[key]["metas"][0]["n"] == 1
        await tracker.close()
        leave = await watcher.expect("presence_diff")
    assert leave.payload == {"joins": {}, "leaves": {key: state.payload[key]}}


async def test_leave_untracks(realtime_server: DevServer) -> None:
    async with (
        await RawClient.connect(realtime_server) as tracker,
        await RawClient.connect(realtime_server) as watcher,
    ):
        await tracker.join(TOPIC, {"presence": {"key": "k"}})
        await watcher.join(TOPIC)
        await tracker.push(TOPIC, "presence", track({"a": 1}))
        await watcher.expect("presence_diff")
        await tracker.push(TOPIC, "phx_leave", {})
        leave = await watcher.expect("presence_diff")
    assert list(leave.payload["leaves"]) == ["k"]


async def test_two_joins_same_key_give_two_metas(realtime_server: DevServer) -> None:
    async with (
        await RawClient.connect(realtime_server) as tab1,
        await RawClient.connect(realtime_server) as tab2,
    ):
        for tab, name in ((tab1, "Bob"), (tab2, "Bob (2nd tab)")):
            await tab.join(TOPIC, {"presence": {"key": "bob"}})
            await tab.push(TOPIC, "presence", track({"name": name}))
            await tab.expect("phx_reply")
        await eventually(lambda: len(realtime_server.presence_state("room1")["bob"]["metas"]) == 2)


@pytest.mark.parametrize(
    ("payload", "status", "response"),
    [
        (
            {"event": "track", "payload": "not a map"},
            "error",
            {"reason": "Presence track payload must be a map"},
        ),
        ({"event": "wave"}, "error", {}),
        ({"payload": {"x": 1}}, "ok", {}),
    ],
    ids=["not-a-map", "unknown-event", "no-event"],
)
async def test_presence_push_replies(
    realtime_server: DevServer, payload: dict[str, Any], status: str, response: Any
) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.join(TOPIC)
        ref = await client.push(TOPIC, "presence", payload)
        reply = await client.expect("phx_reply", ref=ref)
    assert (reply.status, reply.response) == (status, response)


async def test_presence_rate_limit_exact(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(limits=Limits(presence_max_calls=2))
    async with await RawClient.connect(server) as client:
        await client.join(TOPIC, join_ref="1")
        for n in range(2):
            await client.push(TOPIC, "presence", track({"n": n}), join_ref="1")
            await client.expect("phx_reply")
        await client.push(TOPIC, "presence", track({"n": 3}), join_ref="1")
        system = await client.expect("system")
        close = await client.recv_raw()
    assert system.payload == {
        "extension": "system",
        "status": "error",
        "message": "Client presence rate limit exceeded",
        "channel": "room1",
    }
    assert (system.join_ref, system.ref) == ("1", None)
    assert close == '["1","1","realtime:room1","phx_close",{}]'
    assert server.presence_state("room1") == {}


async def test_track_size_exceeded(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(limits=Limits(max_payload_kb=1))
    async with await RawClient.connect(server) as client:
        await client.join(TOPIC)
        await client.push(TOPIC, "presence", track({"pad": "x" * 3000}))
        system = await client.expect("system")
        close = await client.recv()
    assert system.payload["message"] == "Track message size exceeded"
    assert close.event == "phx_close"


async def test_official_client_sees_second_clients_presence(realtime_server: DevServer) -> None:
    watcher = AsyncRealtimeClient(
        realtime_server.ws_url, realtime_server.anon_key, auto_reconnect=False
    )
    tracker = AsyncRealtimeClient(
        realtime_server.ws_url, realtime_server.anon_key, auto_reconnect=False
    )
    joins: list[tuple[str, list[Any]]] = []
    leaves: list[tuple[str, list[Any]]] = []
    syncs: list[int] = []
    try:
        room = watcher.channel("room1")
        room.on_presence_sync(lambda: syncs.append(1))
        room.on_presence_join(lambda key, cur, new: joins.append((key, new)))
        room.on_presence_leave(lambda key, cur, left: leaves.append((key, left)))
        await room.subscribe()
        await eventually(lambda: syncs)  # presence_state after the join

        mine = tracker.channel(
            "room1", {"config": {"presence": {"key": "alice", "enabled": False}}}
        )
        await mine.subscribe()
        await mine.track({"status": "online"})
        await eventually(lambda: "alice" in room.presence_state())
        assert room.presence_state()["alice"][0]["status"] == "online"
        assert joins[-1][0] == "alice"

        await mine.track({"status": "away"})
        await eventually(
            lambda: [m["status"] for m in room.presence_state().get("alice", [])] == ["away"]
        )

        await mine.untrack()
        await eventually(lambda: "alice" not in room.presence_state())
        assert leaves[-1][0] == "alice"
        assert len(syncs) >= 4
    finally:
        await tracker.close()
        await watcher.close()
