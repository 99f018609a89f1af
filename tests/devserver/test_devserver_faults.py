"""Fault injection (PROTOCOL.md §10.11), seen from a raw socket or the official client."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import websockets
from realtime import AsyncRealtimeClient
from websockets.exceptions import ConnectionClosed, InvalidStatus

from supa_realtime.devserver import DevServer
from supa_realtime.phoenix.message import Message
from supa_realtime.testing.devserver import RawClient, eventually

TOPIC = "realtime:room1"


@pytest.mark.parametrize("code", [1000, 1001, 1011, 1012])
async def test_close_all_with_code_and_reason(realtime_server: DevServer, code: int) -> None:
    clients = [await RawClient.connect(realtime_server) for _ in range(2)]
    assert await realtime_server.faults.close_all(code, "injected") == 2
    for client in clients:
        with pytest.raises(ConnectionClosed) as info:
            await client.recv_raw()
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (code, "injected")
    await eventually(lambda: realtime_server.connections == 0)


async def test_official_client_reconnects_and_rejoins_after_1012(
    realtime_server: DevServer,
) -> None:
    client = AsyncRealtimeClient(
        realtime_server.ws_url, realtime_server.anon_key, initial_backoff=0.05
    )
    got: list[Any] = []
    try:
        channel = client.channel("room1")
        channel.on_broadcast("e", got.append)
        await channel.subscribe()
        await eventually(lambda: realtime_server.subscribers("room1") == 1)
        await realtime_server.faults.close_all(1012, "restart")
        await eventually(
            lambda: realtime_server.connections == 1 and realtime_server.subscribers("room1") == 1,
            within=10,
        )
        await realtime_server.broadcast("room1", "e", {"after": True})
        await eventually(lambda: got)
    finally:
        await client.close()


async def test_withheld_heartbeats(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        realtime_server.faults.withhold_heartbeats = True
        await client.send('[null,"1","phoenix","heartbeat",{}]')
        reply = await client.join(TOPIC)  # other replies still flow
        assert reply.status == "ok"
        assert [f for f in client.frames if '"phoenix"' in str(f)] == []
        realtime_server.faults.reset()
        await client.send('[null,"2","phoenix","heartbeat",{}]')
        assert (await client.recv()).ref == "2"


async def test_refuse_next_joins_by_topic(realtime_server: DevServer) -> None:
    realtime_server.faults.refuse_joins(
        2, "RealtimeRestarting: Realtime is restarting, please standby", topic="room1"
    )
    async with await RawClient.connect(realtime_server) as client:
        assert (await client.join("other")).status == "ok"
        first = await client.join(TOPIC)
        second = await client.join(TOPIC)
        third = await client.join(TOPIC)
    assert [first.status, second.status, third.status] == ["error", "error", "ok"]
    assert first.response == {
        "reason": "RealtimeRestarting: Realtime is restarting, please standby"
    }


async def test_refuse_connections(realtime_server: DevServer) -> None:
    realtime_server.faults.refuse_connections(1, 503, "Error connecting to Realtime")
    url = f"{realtime_server.ws_url}/websocket?apikey={realtime_server.anon_key}"
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(url):
            pass
    assert info.value.response.status_code == 503
    assert orjson.loads(bytes(info.value.response.body or b"")) == {
        "error": "Error connecting to Realtime"
    }
    async with websockets.connect(url):
        await eventually(lambda: realtime_server.connections == 1)


async def test_postgres_changes_system_error(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.join(TOPIC, join_ref="4")
        sent = realtime_server.faults.postgres_changes_error(
            "room1", '{:error, "Too many database timeouts"}'
        )
        frame = await client.recv_raw()
    assert sent == 1
    assert frame == (
        '["4",null,"realtime:room1","system",{"extension":"postgres_changes","status":"error",'
        '"message":"{:error, \\"Too many database timeouts\\"}","channel":"room1"}]'
    )


async def test_reply_delay(realtime_server: DevServer) -> None:
    realtime_server.faults.reply_delay = 0.3
    loop = asyncio.get_running_loop()
    async with await RawClient.connect(realtime_server) as client:
        started = loop.time()
        await client.send(Message("phoenix", "heartbeat", {}, ref="1"))
        assert (await client.recv()).ref == "1"
        assert loop.time() - started >= 0.3


async def test_presence_diff_with_unknown_leave_key(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.join(TOPIC, {"presence": {"enabled": True}})
        await client.expect("presence_state")
        known = {"alice": {"metas": [{"phx_ref": "AAAAAAAAAAAAAAAA"}]}}
        assert (
            realtime_server.faults.presence_diff_unknown_leave("room1", "ghost", then_leave=known)
            == 1
        )
        diff = await client.expect("presence_diff")
    assert diff.payload["joins"] == {}
    assert list(diff.payload["leaves"]) == ["ghost", "alice"]


async def test_restart_on_same_port_and_official_client_comes_back(
    realtime_server: DevServer,
) -> None:
    client = AsyncRealtimeClient(
        realtime_server.ws_url, realtime_server.anon_key, initial_backoff=0.05, max_retries=12
    )
    got: list[Any] = []
    port = realtime_server.port
    try:
        channel = client.channel("room1")
        channel.on_broadcast("e", got.append)
        await channel.subscribe()
        await realtime_server.stop()  # 1012: the client reconnects
        assert realtime_server.connections == 0
        await realtime_server.start()
        assert realtime_server.port == port
        await eventually(lambda: realtime_server.subscribers("room1") == 1, within=20)
        await realtime_server.broadcast("room1", "e", {"back": True})
        await eventually(lambda: got)
        assert got[0]["payload"] == {"back": True}
    finally:
        await client.close()


async def test_join_rate_limit_refusal_also_closes_1001(realtime_server: DevServer) -> None:
    realtime_server.faults.refuse_joins(1, "ClientJoinRateLimitReached: Too many joins per second")
    async with await RawClient.connect(realtime_server) as client:
        reply = await client.join(TOPIC)
        with pytest.raises(ConnectionClosed) as info:
            await client.recv_raw()
    assert reply.response == {"reason": "ClientJoinRateLimitReached: Too many joins per second"}
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1001


async def test_crashed_channel_sends_phx_error(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.join(TOPIC, join_ref="7")
        assert realtime_server.faults.crash_channels("room1") == 1
        frame = await client.recv_raw()
        assert realtime_server.channel_count == 0
        assert (await client.join(TOPIC)).status == "ok"  # a rejoin works
    assert frame == '["7","7","realtime:room1","phx_error",{}]'


async def test_official_client_rejoins_after_phx_error(realtime_server: DevServer) -> None:
    client = AsyncRealtimeClient(
        realtime_server.ws_url, realtime_server.anon_key, auto_reconnect=False
    )
    states: list[str] = []
    try:
        channel = client.channel("room1")
        await channel.subscribe(lambda state, err: states.append(str(state)))
        realtime_server.faults.crash_channels("room1")
        await eventually(lambda: any("CHANNEL_ERROR" in s for s in states))
        # the client's rejoin timer brings the channel back
        await eventually(lambda: realtime_server.subscribers("room1") == 1, within=15)
    finally:
        await client.close()
