"""RealtimeConsumer over a real daphne: exact frames for V1/V2, joins, heartbeats, leave,
broadcast between sockets (self/ack, binary), relayed group messages and postgres changes."""

from __future__ import annotations

from typing import Any

import orjson

from supa_realtime.groups import group_for
from supa_realtime.phoenix.message import Message
from supa_realtime.testing.devserver import eventually
from tests.gateway.gateway_support import GatewayFactory, connect


async def test_heartbeat_join_and_leave_frames_v2(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory()
    client = await connect(server)
    async with client:
        await client.send('[null,"7","phoenix","heartbeat",{}]')
        assert await client.recv_raw() == (
            '[null,"7","phoenix","phx_reply",{"status":"ok","response":{}}]'
        )
        await client.send('["1","1","realtime:room:1","phx_join",{"config":{}}]')
        assert await client.recv_raw() == (
            '["1","1","realtime:room:1","phx_reply",'
            '{"status":"ok","response":{"postgres_changes":[]}}]'
        )
        await client.send('["1","2","realtime:room:1","phx_leave",{}]')
        assert await client.recv_raw() == (
            '["1","2","realtime:room:1","phx_reply",{"status":"ok","response":{}}]'
        )
        assert await client.recv_raw() == '["1","1","realtime:room:1","phx_close",{}]'
        await client.send('["1","3","realtime:room:1","broadcast",{"event":"x","payload":{}}]')
        assert await client.recv_raw() == (
            '[null,"3","realtime:room:1","phx_reply",'
            '{"status":"error","response":{"reason":"unmatched topic"}}]'
        )


async def test_v1_frames_as_the_python_client_sends_them(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory()
    async with await connect(server, vsn=None) as client:
        await client.send(
            '{"event":"phx_join","payload":{"config":{"broadcast":{"ack":false,"self":false},'
            '"presence":{"key":"","enabled":false},"private":false,"postgres_changes":[]}},'
            '"topic":"realtime:room:1","ref":"1","join_ref":null}'
        )
        assert orjson.loads(await client.recv_raw()) == {
            "topic": "realtime:room:1",
            "event": "phx_reply",
            "payload": {"status": "ok", "response": {"postgres_changes": []}},
            "ref": "1",
        }
        await client.send(
            '{"event":"heartbeat","payload":{},"topic":"phoenix","ref":null,"join_ref":null}'
        )
        assert orjson.loads(await client.recv_raw()) == {
            "topic": "phoenix",
            "event": "phx_reply",
            "payload": {"status": "ok", "response": {}},
            "ref": None,
        }


async def test_broadcast_between_two_sockets_self_and_ack(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory()
    async with await connect(server) as alice, await connect(server) as bob:
        await alice.join("room:1", {"broadcast": {"self": False, "ack": True}})
        await bob.join("room:1", {"broadcast": {"self": True}})
        ref = await alice.push(
            "realtime:room:1",
            "broadcast",
            {"type": "broadcast", "event": "chat", "payload": {"m": 1}},
            join_ref="1",
        )
        assert await alice.recv_raw() == (
            f'["1","{ref}","realtime:room:1","phx_reply",{{"status":"ok","response":{{}}}}]'
        )
        assert await bob.recv_raw() == (
            '[null,null,"realtime:room:1","broadcast",'
            '{"type":"broadcast","event":"chat","payload":{"m":1}}]'
        )
        # bob has self: true, so his own broadcast comes back to him, and to alice once
        await bob.push(
            "realtime:room:1", "broadcast", {"type": "broadcast", "event": "b", "payload": {}}
        )
        assert (await bob.recv()).payload["event"] == "b"
        assert (await alice.recv()).payload["event"] == "b"
        # nothing else arrives: a heartbeat reply is the next frame on both
        for client in (alice, bob):
            await client.send('[null,"hb","phoenix","heartbeat",{}]')
            assert (await client.recv()).ref == "hb"


async def test_binary_broadcast_reaches_v2_as_kind_4_and_v1_as_json(
    gateway_factory: GatewayFactory,
) -> None:
    server = await gateway_factory()
    async with (
        await connect(server) as sender,
        await connect(server) as v2,
        await connect(server, vsn="1.0.0") as v1,
    ):
        for client in (sender, v2, v1):
            await client.join("room:b")
        # kind 3 (PROTOCOL.md §1.7): join_ref "1", ref "5", user event "msg", JSON {"a":1}
        topic = b"realtime:room:b"
        frame = bytes([3, 1, 1, len(topic), 3, 0, 1]) + b"15" + topic + b"msg" + b'{"a":1}'
        await sender.send(frame)
        assert await v2.recv_raw() == bytes([4, len(topic), 3, 0, 1]) + topic + b'msg{"a":1}'
        assert orjson.loads(await v1.recv_raw()) == {
            "topic": "realtime:room:b",
            "event": "broadcast",
            "payload": {"type": "broadcast", "event": "msg", "payload": {"a": 1}},
            "ref": None,
        }
        # a raw binary payload is not delivered to V1 (it cannot carry it)
        raw = bytes([3, 1, 1, len(topic), 3, 0, 0]) + b"16" + topic + b"bin" + b"\xde\xad"
        await sender.send(raw)
        assert await v2.recv_raw() == bytes([4, len(topic), 3, 0, 0]) + topic + b"bin\xde\xad"
        await v1.send('{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"h"}')
        assert orjson.loads(await v1.recv_raw())["ref"] == "h"


async def test_relayed_group_messages_reach_every_subscribed_socket(
    gateway_factory: GatewayFactory, channel_layer: Any
) -> None:
    server = await gateway_factory()
    async with (
        await connect(server) as one,
        await connect(server, vsn="1.0.0") as two,
        await connect(server) as other_topic,
    ):
        await one.join("room:r")
        await two.join("room:r")
        await other_topic.join("room:elsewhere")
        group = group_for("realtime:room:r")
        await channel_layer.group_send(
            group,
            {"type": "realtime.broadcast", "topic": "realtime:room:r", "event": "e", "payload": {}},
        )
        expected = {"type": "broadcast", "event": "e", "payload": {}}
        assert (await one.recv()).payload == expected
        assert (await two.recv()).payload == expected
        # a batch from the worker: every message, in order
        await channel_layer.group_send(
            group,
            {
                "type": "realtime.batch",
                "messages": [
                    {"type": "realtime.broadcast", "topic": "realtime:room:r", "event": str(n),
                     "payload": {"n": n}, "meta": {"id": str(n)}}
                    for n in range(3)
                ],
            },
        )  # fmt: skip
        for client in (one, two):
            got = [(await client.recv()).payload for _ in range(3)]
            assert [p["event"] for p in got] == ["0", "1", "2"]
            assert got[0]["meta"] == {"id": "0"}
        await other_topic.send('[null,"h","phoenix","heartbeat",{}]')
        assert (await other_topic.recv()).ref == "h"  # nothing from room:r before it


def _change(record: dict[str, Any], table: str = "todos") -> dict[str, Any]:
    return {
        "type": "realtime.postgres_change",
        "topic": "realtime:room:db",
        "ids": [1],
        "data": {
            "schema": "public",
            "table": table,
            "commit_timestamp": "2026-01-01T00:00:00.000Z",
            "type": "INSERT",
            "columns": [{"name": "id", "type": "int8"}, {"name": "owner", "type": "text"}],
            "record": record,
            "errors": None,
        },
    }


async def test_postgres_changes_reach_allowed_subscribers_filtered_per_binding(
    gateway_factory: GatewayFactory, channel_layer: Any
) -> None:
    server = await gateway_factory(TABLES={"public.todos": "any"})
    async with (
        await connect(server) as everything,
        await connect(server, vsn="1.0.0") as filtered,
        await connect(server) as refused,
    ):
        all_todos = {"event": "*", "schema": "public", "table": "todos"}
        reply = await everything.join("room:db", {"postgres_changes": [all_todos]})
        entry = reply.payload["response"]["postgres_changes"][0]
        assert entry["table"] == "todos"
        assert isinstance(entry["id"], int)
        system = await everything.expect("system")
        assert system.payload["message"] == "Subscribed to PostgreSQL"
        mine = {"event": "INSERT", "schema": "public", "table": "todos", "filter": "owner=eq.a"}
        reply = await filtered.join("room:db", {"postgres_changes": [mine]})
        mine_id = reply.payload["response"]["postgres_changes"][0]["id"]
        await filtered.expect("system")
        secret = {"event": "*", "schema": "public", "table": "secrets"}
        reply = await refused.join("room:db", {"postgres_changes": [secret]})
        assert reply.payload == {
            "status": "error",
            "response": {
                "reason": "Unauthorized: You do not have permission to receive changes of "
                "public.secrets"
            },
        }
        group = group_for("realtime:room:db")
        await channel_layer.group_send(group, _change({"id": 1, "owner": "b"}))
        await channel_layer.group_send(group, _change({"id": 2, "owner": "a"}))
        await channel_layer.group_send(group, _change({"id": 3, "owner": "a"}, "secrets"))
        first = await everything.recv()
        second = await everything.recv()
        assert [first.payload["data"]["record"]["id"], second.payload["data"]["record"]["id"]] == [
            1,
            2,
        ]
        assert first.payload["ids"] == [entry["id"]]
        got = await filtered.recv()
        assert got.event == "postgres_changes"
        assert got.payload["ids"] == [mine_id]
        assert got.payload["data"]["record"] == {"id": 2, "owner": "a"}
        for client in (everything, filtered, refused):
            await client.send(Message("phoenix", "heartbeat", {}, ref="h"))
            assert (await client.recv()).ref == "h"


async def test_process_serves_many_sockets_with_one_group_membership(
    gateway_factory: GatewayFactory, channel_layer: Any
) -> None:
    server = await gateway_factory()
    clients = [await connect(server) for _ in range(5)]
    try:
        for client in clients:
            await client.join("room:many")
        group = group_for("realtime:room:many")
        members = await eventually(
            lambda: channel_layer.connection(channel_layer.consistent_hash(group)).zcard(
                channel_layer._group_key(group)
            )
        )
        assert members == 1
        await channel_layer.group_send(
            group,
            {"type": "realtime.broadcast", "topic": "realtime:room:many", "event": "x",
             "payload": {}},
        )  # fmt: skip
        for client in clients:
            assert (await client.recv()).payload["event"] == "x"
    finally:
        for client in clients:
            await client.close()


async def test_official_client_broadcast_between_two_django_clients(
    gateway_factory: GatewayFactory,
) -> None:
    from realtime import AsyncRealtimeClient

    from supa_realtime.gateway.tokens import mint_token

    server = await gateway_factory()
    token = mint_token(None, topics={"room:*": ["join", "broadcast"]})
    alice = AsyncRealtimeClient(server.url, token, auto_reconnect=False)
    bob = AsyncRealtimeClient(server.url, token, auto_reconnect=False)
    alice_got: list[Any] = []
    bob_got: list[Any] = []
    states: list[str] = []
    try:
        options: Any = {"config": {"broadcast": {"self": True}}}
        a = alice.channel("room:official", options)
        b = bob.channel("room:official")
        a.on_broadcast("chat", alice_got.append)
        b.on_broadcast("chat", bob_got.append)
        await a.subscribe(lambda state, err: states.append(str(state)))
        await b.subscribe(lambda state, err: states.append(str(state)))
        await eventually(lambda: states.count("RealtimeSubscribeStates.SUBSCRIBED") == 2)
        await a.send_broadcast("chat", {"m": 1})
        await b.send_broadcast("chat", {"m": 2})
        await eventually(lambda: len(alice_got) == 2 and len(bob_got) == 1)
        assert sorted(m["payload"]["m"] for m in alice_got) == [1, 2]
        assert bob_got[0]["payload"] == {"m": 1}
    finally:
        await alice.close()
        await bob.close()
