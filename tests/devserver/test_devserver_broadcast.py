"""Broadcast: fan-out, self, ack, size limit, binary kinds 3/4, V1/V2 receivers (§1.7, §5)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from realtime import AsyncRealtimeClient

from supa_realtime.devserver import DevServer, Limits
from supa_realtime.phoenix.message import Message
from supa_realtime.phoenix.serializer import (
    V1Serializer,
    V2Serializer,
    encode_user_broadcast,
    encode_user_broadcast_push,
)
from supa_realtime.testing.devserver import RawClient, eventually

TOPIC = "realtime:room1"


async def next_after(client: RawClient) -> list[str | bytes]:
    """Every frame received before the reply to a heartbeat sent now."""
    await client.send(Message("phoenix", "heartbeat", {}, ref="hb"))
    frames: list[str | bytes] = []
    while True:
        frame = await client.recv_raw()
        message = client.serializer.decode(frame)
        if (message.topic, message.event, message.ref) == ("phoenix", "phx_reply", "hb"):
            return frames
        frames.append(frame)


async def test_v2_text_broadcast_fans_out_exactly(realtime_server: DevServer) -> None:
    async with (
        await RawClient.connect(realtime_server) as sender,
        await RawClient.connect(realtime_server) as receiver,
    ):
        await sender.join(TOPIC, join_ref="3")
        await receiver.join(TOPIC)
        await sender.send(
            '["3","7","realtime:room1","broadcast",'
            '{"type":"broadcast","event":"cursor","payload":{"x":1},"extra":true}]'
        )
        frame = await receiver.recv_raw()
        assert await next_after(sender) == []  # self is off by default; no ack either
    assert frame == (
        '[null,null,"realtime:room1","broadcast",'
        '{"type":"broadcast","event":"cursor","payload":{"x":1},"extra":true}]'
    )


async def test_v1_receiver_gets_json_without_join_ref(realtime_server: DevServer) -> None:
    async with (
        await RawClient.connect(realtime_server) as sender,
        await RawClient.connect(realtime_server, vsn=None) as receiver,
    ):
        await sender.join(TOPIC)
        await receiver.join(TOPIC)
        await sender.push(TOPIC, "broadcast", {"type": "broadcast", "event": "e", "payload": 1})
        frame = await receiver.recv_raw()
    assert orjson.loads(frame) == {
        "topic": TOPIC,
        "event": "broadcast",
        "payload": {"type": "broadcast", "event": "e", "payload": 1},
        "ref": None,
    }


async def test_self_and_ack(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.join(TOPIC, {"broadcast": {"self": True, "ack": True}}, join_ref="3")
        await client.send('["3","7","realtime:room1","broadcast",{"event":"e","payload":{}}]')
        frames = [await client.recv_raw(), await client.recv_raw()]
    assert frames == [
        '[null,null,"realtime:room1","broadcast",{"event":"e","payload":{}}]',
        '["3","7","realtime:room1","phx_reply",{"status":"ok","response":{}}]',
    ]


async def test_payload_size_exceeded_with_ack(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(limits=Limits(max_payload_kb=1))
    async with (
        await RawClient.connect(server) as sender,
        await RawClient.connect(server) as receiver,
    ):
        await sender.join(TOPIC, {"broadcast": {"ack": True}}, join_ref="3")
        await receiver.join(TOPIC)
        big = {"type": "broadcast", "event": "e", "payload": {"pad": "x" * 2000}}
        await sender.send(Message(TOPIC, "broadcast", big, ref="8", join_ref="3"))
        frame = await sender.recv_raw()
        assert await next_after(receiver) == []
    assert frame == (
        '["3","8","realtime:room1","phx_reply",'
        '{"status":"error","response":"payload_size_exceeded"}]'
    )


async def test_oversized_without_ack_is_dropped_silently(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(limits=Limits(max_payload_kb=1))
    async with await RawClient.connect(server) as client:
        await client.join(TOPIC, {"broadcast": {"self": True}})
        await client.push(TOPIC, "broadcast", {"event": "e", "payload": "x" * 2000})
        assert await next_after(client) == []


async def test_kind3_json_to_v2_kind4_and_v1_json(realtime_server: DevServer) -> None:
    async with (
        await RawClient.connect(realtime_server) as sender,
        await RawClient.connect(realtime_server) as v2,
        await RawClient.connect(realtime_server, vsn="1.0.0") as v1,
    ):
        await sender.join(TOPIC, {"broadcast": {"ack": True}}, join_ref="3")
        await v2.join(TOPIC)
        await v1.join(TOPIC)
        push = encode_user_broadcast_push("3", "5", TOPIC, "msg", {"a": 1}, {"client": "meta"})
        await sender.send(push)
        ack = await sender.recv_raw()
        binary, text = await v2.recv_raw(), await v1.recv_raw()
    assert ack == '["3","5","realtime:room1","phx_reply",{"status":"ok","response":{}}]'
    assert binary == b"\x04\x0e\x03\x00\x01realtime:room1msg" + b'{"a":1}'
    assert orjson.loads(text) == {
        "topic": TOPIC,
        "event": "broadcast",
        "payload": {"event": "msg", "payload": {"a": 1}, "type": "broadcast"},
        "ref": None,
    }


async def test_kind3_binary_reaches_v2_only(realtime_server: DevServer) -> None:
    async with (
        await RawClient.connect(realtime_server) as sender,
        await RawClient.connect(realtime_server) as v2,
        await RawClient.connect(realtime_server, vsn="1.0.0") as v1,
    ):
        await sender.join(TOPIC)
        await v2.join(TOPIC)
        await v1.join(TOPIC)
        await sender.send(encode_user_broadcast_push("1", "2", TOPIC, "raw", b"\xde\xad\xbe\xef"))
        binary = await v2.recv_raw()
        v1_frames = await next_after(v1)
    assert binary == b"\x04\x0e\x03\x00\x00realtime:room1raw\xde\xad\xbe\xef"
    assert v1_frames == []


async def test_kind3_on_v1_socket_is_malformed(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server, vsn="1.0.0") as client:
        await client.send(encode_user_broadcast_push("1", "2", TOPIC, "raw", b"x"))
        assert await next_after(client) == []


async def test_public_and_private_groups_do_not_mix(realtime_server: DevServer) -> None:
    async with (
        await RawClient.connect(realtime_server) as public,
        await RawClient.connect(realtime_server) as private,
    ):
        await public.join(TOPIC)
        await private.join(TOPIC, {"private": True})
        assert realtime_server.subscribers("room1") == 1
        assert realtime_server.subscribers("room1", private=True) == 1
        await realtime_server.broadcast("room1", "only-public", {"n": 1})
        await realtime_server.broadcast("room1", "only-private", {"n": 2}, private=True)
        got_public = (await public.recv()).payload["event"]
        got_private = (await private.recv()).payload["event"]
        assert await next_after(public) == []
    assert (got_public, got_private) == ("only-public", "only-private")


async def test_server_broadcast_text_to_both_versions_with_meta(realtime_server: DevServer) -> None:
    async with (
        await RawClient.connect(realtime_server) as v2,
        await RawClient.connect(realtime_server, vsn=None) as v1,
    ):
        await v2.join(TOPIC)
        await v1.join(TOPIC)
        ident = "6b0c3f0e-1111-4222-8333-444455556666"
        sent = await realtime_server.broadcast("realtime:room1", "INSERT", {"k": 1}, id=ident)
        text2, text1 = await v2.recv_raw(), await v1.recv_raw()
    assert sent == 2
    assert text2 == (
        '[null,null,"realtime:room1","broadcast",{"event":"INSERT","payload":{"k":1},'
        '"type":"broadcast","meta":{"id":"6b0c3f0e-1111-4222-8333-444455556666"}}]'
    )
    assert orjson.loads(text1)["payload"]["meta"] == {"id": ident}


async def test_fanout_encodes_once_per_version(realtime_server: DevServer) -> None:
    hub = realtime_server.context.hub
    calls: list[str] = []

    class Counting(V2Serializer):
        def encode(self, message: Message) -> str | bytes:
            calls.append("2")
            return super().encode(message)

    class CountingV1(V1Serializer):
        def encode(self, message: Message) -> str:
            calls.append("1")
            return super().encode(message)

    clients = [await RawClient.connect(realtime_server, vsn=v) for v in ["2.0.0", "1.0.0"] * 5]
    try:
        for client in clients:
            await client.join(TOPIC)
        hub.serializers = {"1.0.0": CountingV1("server"), "2.0.0": Counting("server")}
        assert await realtime_server.broadcast("room1", "e", {"n": 1}) == 10
        frames = [await client.recv_raw() for client in clients]
    finally:
        for client in clients:
            await client.close()
    assert sorted(calls) == ["1", "2"]
    assert len(set(frames)) == 2


# --- the official Python client as the peer -------------------------------------------------


@pytest.fixture
async def official(realtime_server: DevServer) -> AsyncIterator[list[AsyncRealtimeClient]]:
    clients = [
        AsyncRealtimeClient(realtime_server.ws_url, realtime_server.anon_key, auto_reconnect=False)
        for _ in range(2)
    ]
    try:
        yield clients
    finally:
        for client in clients:
            await client.close()


async def test_official_clients_exchange_broadcasts(
    realtime_server: DevServer, official: list[AsyncRealtimeClient]
) -> None:
    alice_client, bob_client = official
    alice_got: list[dict[str, Any]] = []
    bob_got: list[dict[str, Any]] = []
    states: list[str] = []
    alice = alice_client.channel(
        "room1", {"config": {"broadcast": {"self": True, "ack": True}, "private": False}}
    )
    bob = bob_client.channel("room1", {"config": {"broadcast": {"self": False}}})
    alice.on_broadcast("chat", alice_got.append)
    bob.on_broadcast("chat", bob_got.append)
    await alice.subscribe(lambda state, err: states.append(str(state)))
    await bob.subscribe(lambda state, err: states.append(str(state)))
    await eventually(lambda: realtime_server.subscribers("room1") == 2)

    acked = asyncio.get_running_loop().create_future()
    push = await alice.push(
        "broadcast", {"type": "broadcast", "event": "chat", "payload": {"m": 1}}
    )
    push.receive("ok", lambda response: acked.set_result(response))
    await bob.send_broadcast("chat", {"m": 2})

    await eventually(lambda: len(alice_got) == 2 and len(bob_got) == 1)
    ack = await asyncio.wait_for(acked, 5)  # the ok reply, parsed by the client's model
    assert ack.postgres_changes is None
    assert [p["payload"] for p in alice_got] == [{"m": 1}, {"m": 2}]  # self on
    assert [p["payload"] for p in bob_got] == [{"m": 1}]  # self off: not its own
    assert (bob_got[0]["event"], bob_got[0]["payload"]) == ("chat", {"m": 1})
    assert all("SUBSCRIBED" in s for s in states)


async def test_official_client_receives_v2_binary_sender_as_json(
    realtime_server: DevServer, official: list[AsyncRealtimeClient]
) -> None:
    got: list[dict[str, Any]] = []
    channel = official[0].channel("room1")
    channel.on_broadcast("bin", got.append)
    await channel.subscribe()
    async with await RawClient.connect(realtime_server) as sender:
        await sender.join(TOPIC)
        await sender.send(encode_user_broadcast_push("1", "2", TOPIC, "bin", b"\x00\x01"))
        await sender.send(encode_user_broadcast_push("1", "3", TOPIC, "bin", {"ok": True}))
        await eventually(lambda: len(got) == 1)
    assert [(p["event"], p["payload"]) for p in got] == [("bin", {"ok": True})]


async def test_kind4_encoder_matches_server_output() -> None:
    assert encode_user_broadcast(TOPIC, "msg", {"a": 1}) == (
        b"\x04\x0e\x03\x00\x01realtime:room1msg" + b'{"a":1}'
    )
