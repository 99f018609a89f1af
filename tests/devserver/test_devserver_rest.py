"""REST broadcast: batch and single-message endpoints (PROTOCOL.md §5.5, §5.6)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from realtime import AsyncRealtimeClient

from supa_realtime.devserver import DevServer, Limits
from supa_realtime.testing.devserver import RawClient

TOPIC = "realtime:room1"


async def post(
    server: DevServer,
    path: str,
    body: Any,
    *,
    key: str | None = "",
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    sent = {"apikey": server.service_role_key if key == "" else key or ""}
    if key is None:
        sent = {}
    sent.update(headers or {})
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        content = raw if raw is not None else orjson.dumps(body)
        return await http.post(path, content=content, headers=sent)


@pytest.mark.parametrize("path", ["/realtime/v1/api/broadcast", "/api/broadcast"])
async def test_batch_202_and_delivery(realtime_server: DevServer, path: str) -> None:
    async with (
        await RawClient.connect(realtime_server) as v2,
        await RawClient.connect(realtime_server, vsn=None) as v1,
    ):
        await v2.join(TOPIC)
        await v1.join(TOPIC)
        ident = "8c1f0d0e-0000-4000-8000-000000000001"
        response = await post(
            realtime_server,
            path,
            {
                "messages": [
                    {"topic": "room1", "event": "a", "payload": {"x": 1}},
                    {"topic": "room1", "event": "b", "payload": {}, "id": ident},
                ]
            },
        )
        assert (response.status_code, response.content) == (202, b"")
        assert response.headers["access-control-allow-origin"] == "*"
        text2 = [await v2.recv_raw(), await v2.recv_raw()]
        first1 = orjson.loads(await v1.recv_raw())
    assert text2 == [
        '[null,null,"realtime:room1","broadcast",{"event":"a","payload":{"x":1},"type":"broadcast"}]',
        '[null,null,"realtime:room1","broadcast",{"event":"b","payload":{},"type":"broadcast",'
        '"meta":{"id":"8c1f0d0e-0000-4000-8000-000000000001"}}]',
    ]
    assert first1["payload"] == {"event": "a", "payload": {"x": 1}, "type": "broadcast"}


async def test_bearer_token_wins_and_private_goes_to_private_group(
    realtime_server: DevServer,
) -> None:
    async with await RawClient.connect(realtime_server) as private:
        await private.join(TOPIC, {"private": True})
        response = await post(
            realtime_server,
            "/api/broadcast",
            {"messages": [{"topic": "room1", "event": "p", "payload": {}, "private": True}]},
            key="garbage",
            headers={"Authorization": f"Bearer {realtime_server.anon_key}"},
        )
        assert response.status_code == 202
        assert (await private.recv()).payload["event"] == "p"


@pytest.mark.parametrize("key", [None, "garbage"], ids=["missing", "invalid"])
async def test_unauthorized(realtime_server: DevServer, key: str | None) -> None:
    response = await post(realtime_server, "/api/broadcast", {"messages": []}, key=key)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})


async def test_422_bodies(realtime_server: DevServer) -> None:
    response = await post(
        realtime_server,
        "/api/broadcast",
        {
            "messages": [
                {"topic": "room1"},
                {"topic": "room1", "event": "ok", "payload": {}},
                {"topic": "", "event": "e", "payload": [1]},
            ]
        },
    )
    assert response.status_code == 422
    assert response.json() == {
        "errors": {
            "messages": [
                {"payload": ["can't be blank"], "event": ["can't be blank"]},
                {},
                {"topic": ["can't be blank"], "payload": ["is invalid"]},
            ]
        }
    }
    missing = await post(realtime_server, "/api/broadcast", {})
    assert (missing.status_code, missing.json()) == (
        422,
        {"errors": {"messages": ["can't be blank"]}},
    )


async def test_429_batch_over_events_per_second(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(limits=Limits(max_events_per_second=2))
    messages = [{"topic": "t", "event": "e", "payload": {}}] * 3
    response = await post(server, "/api/broadcast", {"messages": messages})
    assert (response.status_code, response.json()) == (
        429,
        {"message": "Too many messages to broadcast, please reduce the batch size"},
    )


async def test_unknown_path_is_404_json(realtime_server: DevServer) -> None:
    async with httpx.AsyncClient(base_url=realtime_server.http_url) as http:
        response = await http.get("/api/nothing")
    assert (response.status_code, response.json()) == (404, {"errors": {"detail": "Not Found"}})


async def test_single_message_json_and_binary(realtime_server: DevServer) -> None:
    async with (
        await RawClient.connect(realtime_server) as v2,
        await RawClient.connect(realtime_server, vsn="1.0.0") as v1,
    ):
        await v2.join(TOPIC)
        await v1.join(TOPIC)
        ok = await post(
            realtime_server,
            "/realtime/v1/api/broadcast/room1/events/ev",
            {"a": 1},
            headers={"Content-Type": "application/json"},
        )
        assert ok.status_code == 202
        assert await v2.recv_raw() == b"\x04\x0e\x02\x00\x01realtime:room1ev" + b'{"a":1}'
        assert orjson.loads(await v1.recv_raw())["payload"] == {
            "event": "ev",
            "payload": {"a": 1},
            "type": "broadcast",
        }
        binary = await post(
            realtime_server,
            "/api/broadcast/room1/events/ev",
            None,
            raw=b"\x01\x02",
            headers={"Content-Type": "application/octet-stream"},
        )
        assert binary.status_code == 202
        assert await v2.recv_raw() == b"\x04\x0e\x02\x00\x00realtime:room1ev\x01\x02"
        ref = await v1.push("phoenix", "heartbeat", {})
        assert (await v1.recv()).ref == ref  # V1 never gets the binary one
        wrong = await post(
            realtime_server,
            "/api/broadcast/room1/events/ev",
            None,
            raw=b"x",
            headers={"Content-Type": "text/plain"},
        )
    assert (wrong.status_code, wrong.json()) == (
        415,
        {"error": "Unsupported Media Type. Use application/json or application/octet-stream"},
    )


async def test_official_client_http_send(realtime_server: DevServer) -> None:
    client = AsyncRealtimeClient(
        realtime_server.ws_url, realtime_server.anon_key, auto_reconnect=False
    )
    try:
        channel = client.channel("room1")
        async with await RawClient.connect(realtime_server) as receiver:
            await receiver.join(TOPIC)
            await channel.http_send("hello", {"n": 1})
            got = await receiver.recv_raw()
    finally:
        await client.close()
    assert got == b"\x04\x0e\x05\x00\x01realtime:room1hello" + b'{"n":1}'
