"""The REST transport against the local server: 202, and typed 401 / 422 / 429 errors that
carry the server's message (and never the key)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from supa_realtime import abroadcast, broadcast
from supa_realtime.devserver import DevServer
from supa_realtime.devserver.limits import Limits
from supa_realtime.exceptions import (
    BroadcastError,
    BroadcastInvalid,
    BroadcastRateLimited,
    BroadcastRejected,
    BroadcastUnauthorized,
)
from supa_realtime.groups import group_for
from supa_realtime.rest import RestMessage, encode_body, endpoint, error_for, send, send_sync
from supa_realtime.testing import GroupCapture
from tests.broadcast_support import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://abc.supabase.co", "https://abc.supabase.co/realtime/v1/api/broadcast"),
        ("https://abc.supabase.co/", "https://abc.supabase.co/realtime/v1/api/broadcast"),
        ("wss://abc.supabase.co/realtime/v1", "https://abc.supabase.co/realtime/v1/api/broadcast"),
        (
            "ws://127.0.0.1:4000/realtime/v1/websocket",
            "http://127.0.0.1:4000/realtime/v1/api/broadcast",
        ),
        ("ws://127.0.0.1:4000/socket", "http://127.0.0.1:4000/api/broadcast"),
    ],
)
def test_endpoint(url: str, expected: str) -> None:
    assert endpoint(url) == expected


def test_body_keeps_the_encoded_payload_and_uses_the_subtopic() -> None:
    body = encode_body([RestMessage("realtime:room1", "e", b'{"a":1}', True)])
    assert body == (
        b'{"messages":[{"topic":"room1","event":"e","private":true,"payload":{"a":1}}]}'
    )


@pytest.mark.parametrize(
    ("status", "raw", "cls", "message"),
    [
        (401, b'{"message":"Unauthorized"}', BroadcastUnauthorized, "Unauthorized"),
        (403, b'{"message":"Tenant is suspended"}', BroadcastUnauthorized, "Tenant is suspended"),
        (
            422,
            b'{"errors":{"messages":[{"payload":["can\'t be blank"],'
            b'"event":["can\'t be blank"]},{}]}}',
            BroadcastInvalid,
            "messages[0].payload: can't be blank; messages[0].event: can't be blank",
        ),
        (
            422,
            b'{"errors":{"messages":["Payload size exceeds tenant limit"]}}',
            BroadcastInvalid,
            "messages: Payload size exceeds tenant limit",
        ),
        (429, b'{"message":"Too many requests"}', BroadcastRateLimited, "Too many requests"),
        (500, b"oops", BroadcastRejected, "oops"),
    ],
)
def test_error_for(status: int, raw: bytes, cls: type[BroadcastRejected], message: str) -> None:
    error = error_for(status, raw)
    assert type(error) is cls
    assert error.status == status
    assert error.message == message
    assert isinstance(error, BroadcastError)


async def test_202_reaches_the_official_client(realtime_server: DevServer) -> None:
    receiver = await Receiver.start(realtime_server)
    try:
        await send(
            realtime_server.http_url,
            realtime_server.service_role_key,
            [RestMessage("realtime:room1", "hello", b'{"via":"rest"}')],
        )
        await receiver.wait_for(1, "hello")
    finally:
        await receiver.close()
    assert receiver.events("hello")[0]["payload"] == {"via": "rest"}


async def test_401_with_a_bad_key(realtime_server: DevServer) -> None:
    with pytest.raises(BroadcastUnauthorized) as info:
        await asyncio.to_thread(
            send_sync,
            realtime_server.http_url,
            "not-a-valid-key",
            [RestMessage("room1", "e", b"{}")],
        )
    assert info.value.status == 401
    assert info.value.message == "Unauthorized"
    assert "not-a-valid-key" not in str(info.value)


async def test_422_payload_over_the_server_limit(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(limits=Limits(max_payload_kb=1))
    with pytest.raises(BroadcastInvalid) as info:
        await send(
            server.http_url,
            server.service_role_key,
            [RestMessage("room1", "e", b'{"pad":"' + b"x" * 2000 + b'"}')],
        )
    assert info.value.status == 422
    assert "Payload size exceeds tenant limit" in info.value.message
    assert server.service_role_key not in str(info.value)


async def test_422_blank_event(realtime_server: DevServer) -> None:
    with pytest.raises(BroadcastInvalid, match=r"messages\[0\]\.event: can't be blank"):
        await send(
            realtime_server.http_url,
            realtime_server.service_role_key,
            [RestMessage("room1", "", b"{}")],
        )


async def test_429_rate_limited(realtime_server_factory: Any) -> None:
    server = await realtime_server_factory(limits=Limits(max_events_per_second=0))
    with pytest.raises(BroadcastRateLimited) as info:
        await send(server.http_url, server.service_role_key, [RestMessage("room1", "e", b"{}")])
    assert info.value.status == 429
    assert info.value.message == "Too many messages to broadcast, please reduce the batch size"


async def test_unreachable_server() -> None:
    with pytest.raises(BroadcastError, match=r"cannot reach http://127\.0\.0\.1:9/realtime/v1"):
        await send("http://127.0.0.1:9", "key", [RestMessage("room1", "e", b"{}")], timeout=2)


async def test_broadcast_with_rest_transport(
    realtime_server: DevServer,
    channel_layer: Any,
    broadcast_settings: Callable[..., Any],
) -> None:
    broadcast_settings(realtime_server, BROADCAST={"TRANSPORT": "rest"})
    capture = GroupCapture(channel_layer, group_for("room1"))
    await capture.start()
    receiver = await Receiver.start(realtime_server)
    try:
        await asyncio.to_thread(broadcast, "room1", "hello", {"n": 1})
        await abroadcast("room1", "marker", {})
        await receiver.wait_for(1, "marker")
        await capture.wait_for(2)
    finally:
        await receiver.close()
        await capture.stop()
    assert [(m["event"], m["payload"]) for m in receiver.messages] == [
        ("hello", {"n": 1}),
        ("marker", {}),
    ]
    # No worker relays room1 here, so the local group got it straight from broadcast().
    assert [m["event"] for m in capture.messages] == ["hello", "marker"]


async def test_per_call_rest_errors_surface_at_the_call(
    realtime_server_factory: Any, broadcast_settings: Callable[..., Any]
) -> None:
    server = await realtime_server_factory(limits=Limits(max_events_per_second=0))
    broadcast_settings(server)
    with pytest.raises(BroadcastRateLimited):
        await abroadcast("room1", "e", {}, transport="rest")
    broadcast_settings(server, KEY="wrong-key")
    with pytest.raises(BroadcastUnauthorized):
        await asyncio.to_thread(broadcast, "room1", "e", {}, transport="rest")
