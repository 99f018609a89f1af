"""Handshake, heartbeat, malformed and oversize frames, idle timeout (PROTOCOL.md §1, §2)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from supa_realtime.devserver import DevServer, Limits, mint_key
from supa_realtime.phoenix.message import Message
from supa_realtime.phoenix.serializer import encode_user_broadcast
from supa_realtime.testing.devserver import RawClient, eventually


async def refusal(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(url, additional_headers=headers):
            pass
    response = info.value.response
    return (
        response.status_code,
        bytes(response.body or b""),
        response.headers.get("content-type", ""),
    )


def ws(server: DevServer, query: str, path: str = "/realtime/v1/websocket") -> str:
    return f"ws://127.0.0.1:{server.port}{path}?{query}"


async def test_heartbeat_reply_v2_exact(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.send('[null,"12","phoenix","heartbeat",{}]')
        frame = await client.recv_raw()
    assert frame == '[null,"12","phoenix","phx_reply",{"status":"ok","response":{}}]'


async def test_heartbeat_reply_v1_exact_without_vsn(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server, vsn=None) as client:
        await client.send(
            '{"event":"heartbeat","payload":{},"topic":"phoenix","ref":null,"join_ref":null}'
        )
        frame = await client.recv_raw()
    assert orjson.loads(frame) == {
        "topic": "phoenix",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": None,
    }


async def test_socket_path_without_gateway_prefix(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server, path="/socket/websocket") as client:
        await client.send('[null,"1","phoenix","heartbeat",{}]')
        assert (await client.recv()).status == "ok"


@pytest.mark.parametrize(
    ("make_token", "status", "error"),
    [
        (lambda s: "", 401, "API key is missing"),
        (lambda s: mint_key(s, "anon", ttl=-30), 401, "Token has expired"),
        (lambda s: "sb_publishable_abc", 401, "The token provided is not a valid JWT"),
        (
            lambda s: mint_key("another-secret-of-enough-length-123", "anon"),
            401,
            "Failed to validate JWT signature",
        ),
        (
            lambda s: pyjwt.encode({"exp": 9_999_999_999}, s, algorithm="HS256"),
            401,
            "Fields `role` and `exp` are required in JWT",
        ),
    ],
    ids=["missing", "expired", "not-a-jwt", "bad-signature", "no-role"],
)
async def test_handshake_refusals_exact(
    realtime_server: DevServer, make_token: Callable[[str], str], status: int, error: str
) -> None:
    token = make_token(realtime_server.jwt_secret)
    query = "vsn=2.0.0" + (f"&apikey={token}" if token else "")
    got_status, body, content_type = await refusal(ws(realtime_server, query))
    assert (got_status, orjson.loads(body)) == (status, {"error": error})
    assert content_type == "application/json"
    assert realtime_server.connections == 0


async def test_bad_vsn_is_403_with_empty_body(realtime_server: DevServer) -> None:
    status, body, _ = await refusal(
        ws(realtime_server, f"vsn=3.0.0&apikey={realtime_server.anon_key}")
    )
    assert (status, body) == (403, b"")


async def test_x_api_key_header_wins_over_query(realtime_server: DevServer) -> None:
    url = ws(realtime_server, "vsn=2.0.0&apikey=not-a-jwt")
    async with websockets.connect(url, additional_headers={"x-api-key": realtime_server.anon_key}):
        await eventually(lambda: realtime_server.connections == 1)
    status, body, _ = await refusal(
        ws(realtime_server, f"vsn=2.0.0&apikey={realtime_server.anon_key}"),
        headers={"x-api-key": "not-a-jwt"},
    )
    assert (status, orjson.loads(body)) == (401, {"error": "The token provided is not a valid JWT"})


async def test_unknown_websocket_path_is_404(realtime_server: DevServer) -> None:
    status, body, _ = await refusal(ws(realtime_server, "vsn=2.0.0", path="/nope/websocket"))
    assert status == 404
    assert orjson.loads(body) == {"errors": {"detail": "Not Found"}}


async def test_too_many_connected_users(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(limits=Limits(max_concurrent_users=1))
    async with await RawClient.connect(server):
        status, body, _ = await refusal(ws(server, f"vsn=2.0.0&apikey={server.anon_key}"))
    assert (status, orjson.loads(body)) == (429, {"error": "Too many connected users"})


async def test_refusal_delay_is_applied(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(connect_error_delay=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, _, _ = await refusal(ws(server, "vsn=2.0.0"))
    assert status == 401
    assert loop.time() - started >= 0.3


@pytest.mark.parametrize(
    "frame",
    [
        "not json at all",
        '{"topic":"phoenix","event":"heartbeat","payload":{}}',
        '["only","four","elements","here"]',
        '{"an":"object"}',
        b"\x00\x01\x01\x07\x09" + b"1" + b"1" + b"phoenix" + b"heartbeat",
        b"\x03\x05",
        encode_user_broadcast("realtime:x", "e", {"a": 1}),
        "[1, {}, 2, 3, 4]",
    ],
    ids=[
        "garbage",
        "v1-object",
        "short-array",
        "object",
        "kind-0",
        "truncated-kind-3",
        "server-kind-4",
        "types",
    ],
)
async def test_malformed_frame_is_dropped_and_socket_still_works(
    realtime_server: DevServer, frame: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.send(frame)
        await client.send('[null,"7","phoenix","heartbeat",{}]')
        reply = await client.recv()
    assert (reply.ref, reply.status) == ("7", "ok")
    assert any("malformed" in r.getMessage() for r in caplog.records)


async def test_malformed_frame_log_never_carries_tokens(
    realtime_server: DevServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = realtime_server.anon_key
    async with await RawClient.connect(realtime_server) as client:
        await client.send('["1","1","realtime:a","phx_join",{"access_token":"' + token + '"}')
        await client.send('[null,"2","phoenix","heartbeat",{}]')
        await client.expect("phx_reply", ref="2")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "malformed" in logged
    assert token not in logged
    assert token[:40] not in logged


async def test_oversize_frame_closes_only_that_connection(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(limits=Limits(max_frame_bytes=10_000))
    async with await RawClient.connect(server) as big, await RawClient.connect(server) as other:
        await big.send("[" + " " * 10_001 + "]")
        with pytest.raises(ConnectionClosed) as info:
            await big.recv_raw()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1009
        assert info.value.rcvd.reason
        await other.send('[null,"1","phoenix","heartbeat",{}]')
        assert (await other.recv()).status == "ok"


async def test_default_frame_limit_is_five_megabytes(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.send('[null,"1","phoenix","heartbeat",{"pad":"' + "x" * 4_999_000 + '"}]')
        assert (await client.recv()).status == "ok"
        await client.send(b"\x00" * 5_000_001)
        with pytest.raises(ConnectionClosed) as info:
            await client.recv_raw()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1009


async def test_idle_socket_is_closed(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(idle_timeout=0.3)
    async with await RawClient.connect(server) as client:
        with pytest.raises(ConnectionClosed) as info:
            await client.recv_raw(within=10)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (1000, "idle timeout")
    await eventually(lambda: server.connections == 0)


async def test_inbound_frames_keep_the_socket_open(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(idle_timeout=1.0)
    async with await RawClient.connect(server) as client:
        for n in range(15):
            ref = str(n)
            await client.send(Message("phoenix", "heartbeat", {}, ref=ref))
            assert (await client.expect("phx_reply", ref=ref)).status == "ok"
            await asyncio.sleep(0.1)
        assert server.connections == 1


async def test_stop_closes_sockets_and_connection_count(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory()
    client = await RawClient.connect(server)
    await eventually(lambda: server.connections == 1)
    await server.stop()
    with pytest.raises(ConnectionClosed):
        await client.recv_raw()
    assert server.connections == 0


async def test_debug_wire_log_is_direction_prefixed_and_redacted(
    realtime_server: DevServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = realtime_server.mint_key("authenticated")
    caplog.set_level(logging.DEBUG, logger="supa_realtime.devserver.connection")
    async with await RawClient.connect(realtime_server) as client:
        await client.join("realtime:room1", access_token=token)
        await client.push("realtime:room1", "access_token", {"access_token": "not-a-jwt"})
        await client.expect("phx_close")
    wire = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(line.startswith("< ") and "phx_join" in line for line in wire)
    assert any(line.startswith("> ") and "phx_reply" in line for line in wire)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in logged
    assert token.split(".")[2] not in logged
    assert "not-a-jwt" not in logged
