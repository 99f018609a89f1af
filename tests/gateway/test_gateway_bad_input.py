"""Bad input reaches only the connection that sent it: malformed frames, unknown events,
oversize frames and payloads, and floods get error replies or a close with a reason."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from supa_realtime.phoenix.message import Message
from supa_realtime.testing.devserver import RawClient
from tests.gateway.gateway_support import GatewayFactory, GatewayServer, connect

TOPIC = "realtime:room:bad"


async def _closed_with(client: RawClient) -> tuple[int | None, str]:
    """The ``system`` reason frame, then the close code."""
    frame = await client.recv()
    assert frame.topic == "phoenix"
    assert frame.event == "system"
    with pytest.raises(ConnectionClosed):
        await client.recv()
    assert client.ws.close_code is not None
    return client.ws.close_code, frame.payload["message"]


async def _still_works(client: RawClient) -> None:
    ref = client.next_ref()
    await client.send(Message("phoenix", "heartbeat", {}, ref=ref))
    assert (await client.expect("phx_reply", ref=ref)).payload["status"] == "ok"


async def _bystander(server: GatewayServer) -> RawClient:
    client = await connect(server)
    await client.join("room:bad")
    return client


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        ("not json", "malformed frame"),
        ('{"topic":"realtime:x"}', "malformed frame"),
        ("[1,2]", "malformed frame"),
        (b"\x00\x01", "malformed frame"),
        (b"\x03\xff", "malformed frame"),
    ],
)
async def test_malformed_frames_close_that_connection_only(
    gateway_factory: GatewayFactory, frame: Any, why: str
) -> None:
    server = await gateway_factory()
    async with await _bystander(server) as other, await connect(server) as bad:
        await bad.send(frame)
        code, reason = await _closed_with(bad)
        assert code == 4007
        assert reason.startswith(why)
        await _still_works(other)


async def test_unknown_events_and_topics_get_error_replies(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory()
    async with await connect(server) as client:
        await client.join("room:bad")
        ref = await client.push(TOPIC, "nonsense", {})
        reply = await client.expect("phx_reply", ref=ref)
        assert reply.payload == {
            "status": "error",
            "response": {"reason": "UnknownEvent: 'nonsense' is not an event"},
        }
        ref = await client.push("elsewhere", "phx_join", {})
        reply = await client.expect("phx_reply", ref=ref)
        assert reply.payload["response"] == {"reason": "unmatched topic"}
        reply = await client.join("realtime:")
        assert reply.payload["response"] == {
            "reason": "TopicNameRequired: You must provide a topic name"
        }
        await _still_works(client)


async def test_oversize_frame_closes_with_1009(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory(MAX_FRAME_BYTES=2000)
    async with await _bystander(server) as other, await connect(server) as big:
        await big.send(Message(TOPIC, "broadcast", {"event": "x", "payload": "y" * 3000}))
        code, reason = await _closed_with(big)
        assert code == 4009
        assert "exceeds 2000" in reason
        await _still_works(other)


async def test_oversize_payload_gets_payload_size_exceeded(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory(MAX_PAYLOAD_BYTES=100)
    async with await _bystander(server) as other, await connect(server) as client:
        await client.join("room:bad", {"broadcast": {"ack": True}})
        ref = await client.push(
            TOPIC, "broadcast", {"type": "broadcast", "event": "x", "payload": "y" * 200}
        )
        reply = await client.expect("phx_reply", ref=ref)
        assert reply.payload == {"status": "error", "response": "payload_size_exceeded"}
        ref = await client.push(TOPIC, "presence", {"event": "track", "payload": {"p": "y" * 200}})
        stopped = await client.expect("system")
        assert stopped.payload["message"] == "Track message size exceeded"
        await _still_works(client)
        await _still_works(other)


async def test_flood_gets_rate_limited_then_closed(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory(RATE=1.0, BURST=5, FLOOD_CLOSE_AFTER=10)
    async with await connect(server) as other, await connect(server) as flooder:
        frames = [
            orjson.dumps([None, str(n), "phoenix", "heartbeat", {}]).decode() for n in range(40)
        ]
        for frame in frames:
            try:
                await flooder.send(frame)
            except ConnectionClosed:
                break
        replies: list[Message] = []

        async def read_all() -> None:
            async with asyncio.timeout(10):
                while True:
                    replies.append(await flooder.recv())

        with pytest.raises(ConnectionClosed):
            await read_all()
        statuses = [r.payload.get("status") for r in replies if r.event == "phx_reply"]
        assert statuses[:5] == ["ok"] * 5
        assert "error" in statuses
        refused = next(r for r in replies if r.payload.get("status") == "error")
        assert refused.payload["response"] == {
            "reason": "RateLimited: Too many messages per second"
        }
        assert replies[-1].event == "system"
        assert replies[-1].payload["message"] == "rate limit exceeded"
        assert flooder.ws.close_code == 4008
        await _still_works(other)


async def test_presence_calls_are_limited_per_channel(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory()
    async with await connect(server) as client:
        await client.join("room:bad")
        for n in range(5):
            await client.push(TOPIC, "presence", {"event": "track", "payload": {"n": n}})
            await client.expect("phx_reply")
        await client.push(TOPIC, "presence", {"event": "track", "payload": {"n": 6}})
        stopped = await client.expect("system")
        assert stopped.payload["message"] == "Client presence rate limit exceeded"
        assert (await client.expect("phx_close")).topic == TOPIC
        await _still_works(client)


async def test_too_many_channels(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory(MAX_CHANNELS=2)
    async with await connect(server) as client:
        for n in range(2):
            assert (await client.join(f"room:{n}")).payload["status"] == "ok"
        reply = await client.join("room:3")
        assert reply.payload["response"] == {"reason": "ChannelRateLimitReached: Too many channels"}


async def test_idle_socket_is_closed_heartbeating_one_stays(
    gateway_factory: GatewayFactory,
) -> None:
    server = await gateway_factory(IDLE_TIMEOUT=1.5)
    async with await connect(server) as idle, await connect(server) as busy:
        code, reason = None, ""

        async def heartbeat_until_idle_closes() -> None:
            nonlocal code, reason
            reader = asyncio.create_task(_closed_with(idle))
            try:
                while not reader.done():
                    await _still_works(busy)
                    await asyncio.wait({reader}, timeout=0.3)
                code, reason = reader.result()
            finally:
                reader.cancel()

        async with asyncio.timeout(15):
            await heartbeat_until_idle_closes()
        assert code == 1000
        assert reason == "idle timeout"
        await _still_works(busy)


async def test_close_reason_is_in_the_close_frame_where_the_server_sends_it(
    gateway_factory: GatewayFactory,
) -> None:
    server = await gateway_factory(asgi_server="uvicorn")
    async with await connect(server) as bad:
        await bad.send("not json")
        code, reason = await _closed_with(bad)
        assert code == 4007
        assert bad.ws.close_reason == reason
        assert reason.startswith("malformed frame")
