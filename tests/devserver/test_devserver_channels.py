"""Joins, leaves, duplicate joins, access tokens, join errors (PROTOCOL.md §1.6, §3, §7)."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from supa_realtime.devserver import DevServer, Limits
from supa_realtime.phoenix.message import Message
from supa_realtime.testing.devserver import RawClient

TOPIC = "realtime:room1"


async def test_join_reply_v2_exact(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.send('["1","1","realtime:room1","phx_join",{"config":{}}]')
        frame = await client.recv_raw()
    assert frame == (
        '["1","1","realtime:room1","phx_reply",{"status":"ok","response":{"postgres_changes":[]}}]'
    )


async def test_join_reply_v1_has_no_join_ref(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server, vsn="1.0.0") as client:
        await client.send(
            '{"topic":"realtime:room1","event":"phx_join","payload":{"config":{}},'
            '"ref":"1","join_ref":"1"}'
        )
        frame = await client.recv_raw()
    assert orjson.loads(frame) == {
        "topic": TOPIC,
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {"postgres_changes": []}},
        "ref": "1",
    }


async def test_topic_without_prefix_is_unmatched_without_join_ref(
    realtime_server: DevServer,
) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.send('["1","1","room1","phx_join",{"config":{}}]')
        frame = await client.recv_raw()
    assert frame == (
        '[null,"1","room1","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]'
    )


async def test_push_on_unjoined_topic_is_unmatched(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.send('["3","14","realtime:room1","broadcast",{"event":"x","payload":{}}]')
        frame = await client.recv_raw()
    assert frame == (
        '[null,"14","realtime:room1","phx_reply",'
        '{"status":"error","response":{"reason":"unmatched topic"}}]'
    )


async def test_empty_subtopic_is_topic_name_required(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.send('["4","4","realtime:","phx_join",{"config":{}}]')
        frame = await client.recv_raw()
    assert frame == (
        '["4","4","realtime:","phx_reply",{"status":"error","response":'
        '{"reason":"TopicNameRequired: You must provide a topic name"}}]'
    )


async def test_duplicate_join_closes_the_old_join_first(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        assert (await client.join(TOPIC, join_ref="1")).status == "ok"
        await client.send('["5","5","realtime:room1","phx_join",{"config":{}}]')
        first, second = await client.recv_raw(), await client.recv_raw()
        assert realtime_server.channel_count == 1
    assert first == '["1","1","realtime:room1","phx_close",{}]'
    assert second.startswith('["5","5","realtime:room1","phx_reply",{"status":"ok"')


async def test_leave_replies_ok_then_closes(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.join(TOPIC, join_ref="2")
        await client.send('["2","9","realtime:room1","phx_leave",{}]')
        reply, close = await client.recv_raw(), await client.recv_raw()
        assert reply == '["2","9","realtime:room1","phx_reply",{"status":"ok","response":{}}]'
        assert close == '["2","2","realtime:room1","phx_close",{}]'
        assert realtime_server.channel_count == 0
        await client.send('[null,"10","realtime:room1","broadcast",{"event":"x","payload":{}}]')
        unmatched = await client.recv()
    assert unmatched.response == {"reason": "unmatched topic"}


async def test_leave_v1_python_style_close_ref_is_null(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server, vsn=None) as client:
        await client.send(
            '{"event":"phx_join","payload":{"config":{}},"topic":"realtime:room1","ref":"1",'
            '"join_ref":null}'
        )
        await client.expect("phx_reply")
        await client.send(
            '{"event":"phx_leave","payload":{},"topic":"realtime:room1","ref":"2","join_ref":null}'
        )
        reply, close = await client.recv_raw(), await client.recv_raw()
    assert orjson.loads(reply)["ref"] == "2"
    assert orjson.loads(close) == {"topic": TOPIC, "event": "phx_close", "payload": {}, "ref": None}


async def test_leave_of_unjoined_topic_still_ok(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        ref = await client.push(TOPIC, "phx_leave", {})
        reply = await client.recv()
    assert (reply.ref, reply.status, reply.response) == (ref, "ok", {})


async def test_channel_limit_exact_reason(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(limits=Limits(max_channels_per_client=2))
    async with await RawClient.connect(server) as client:
        assert (await client.join("a")).status == "ok"
        assert (await client.join("b")).status == "ok"
        await client.send('["9","9","realtime:c","phx_join",{"config":{}}]')
        frame = await client.recv_raw()
    assert frame == (
        '["9","9","realtime:c","phx_reply",{"status":"error","response":'
        '{"reason":"ChannelRateLimitReached: Too many channels"}}]'
    )


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("expired", r"InvalidJWTToken: Token has expired \d+ seconds ago"),
        ("garbage", re.escape("MalformedJWT: The token provided is not a valid JWT")),
        ("foreign", re.escape("JwtSignatureError: Failed to validate JWT signature")),
    ],
)
async def test_join_token_errors(realtime_server: DevServer, token: str, reason: str) -> None:
    tokens = {
        "expired": realtime_server.mint_key("authenticated", ttl=-5),
        "garbage": "abc.def.ghi",
        "foreign": DevServer(jwt_secret="x" * 40).anon_key,
    }
    async with await RawClient.connect(realtime_server) as client:
        reply = await client.join(TOPIC, access_token=tokens[token])
    assert reply.status == "error"
    assert re.fullmatch(reason, reply.response["reason"])
    assert realtime_server.channel_count == 0


async def test_sb_access_token_falls_back_to_socket_key(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        reply = await client.join(TOPIC, access_token="sb_publishable_xyz")
    assert reply.status == "ok"


async def test_join_error_delay_does_not_block_the_socket(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(join_error_delay=0.5)
    async with await RawClient.connect(server) as client:
        await client.send('["1","1","realtime:","phx_join",{"config":{}}]')
        await client.send('[null,"2","phoenix","heartbeat",{}]')
        first, second = await client.recv(), await client.recv()
    assert (first.topic, first.ref) == ("phoenix", "2")
    assert (second.topic, second.status) == ("realtime:", "error")


async def test_access_token_success_has_no_reply(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.join(TOPIC, join_ref="1")
        fresh = realtime_server.mint_key("authenticated", sub="u1")
        await client.send(
            Message(TOPIC, "access_token", {"access_token": fresh}, ref="2", join_ref="1")
        )
        await client.send('[null,"3","phoenix","heartbeat",{}]')
        nxt = await client.recv()
    assert (nxt.topic, nxt.ref) == ("phoenix", "3")
    assert realtime_server.channel_count == 1


async def test_invalid_access_token_system_error_then_close(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.join(TOPIC, join_ref="1")
        await client.send('["1","2","realtime:room1","access_token",{"access_token":"nope"}]')
        system, close = await client.recv_raw(), await client.recv_raw()
    assert system == (
        '["1",null,"realtime:room1","system",{"extension":"system","status":"error",'
        '"message":"The token provided is not a valid JWT","channel":"room1"}]'
    )
    assert close == '["1","1","realtime:room1","phx_close",{}]'
    assert realtime_server.channel_count == 0


async def test_channel_closes_when_its_token_expires(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        short = realtime_server.mint_key("authenticated", ttl=2)  # exp is a whole second
        await client.join(TOPIC, access_token=short, join_ref="1")
        system = await client.expect("system", within=10)
        close = await client.recv()
    assert re.fullmatch(r"Token has expired \d+ seconds ago", system.payload["message"])
    assert system.payload["extension"] == "system"
    assert (close.event, close.ref, close.join_ref) == ("phx_close", "1", "1")


async def test_inbound_join_ref_is_not_checked(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.join(TOPIC, {"broadcast": {"self": True, "ack": True}}, join_ref="1")
        await client.send('["stale","2","realtime:room1","broadcast",{"event":"e","payload":{}}]')
        await client.send('[null,"3","realtime:room1","broadcast",{"event":"e","payload":{}}]')
        replies = [await client.expect("phx_reply") for _ in range(2)]
    assert [r.status for r in replies] == ["ok", "ok"]


async def test_flexible_booleans_in_config(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.join(TOPIC, {"broadcast": {"self": "TRUE", "ack": "true"}})
        ref = await client.push(
            TOPIC, "broadcast", {"type": "broadcast", "event": "e", "payload": {}}
        )
        got = {(await client.recv()).event, (await client.recv()).event}
    assert got == {"broadcast", "phx_reply"}
    assert ref
