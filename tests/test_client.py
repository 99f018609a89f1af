"""The asyncio client (supa_realtime.client) against the local Realtime server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from supa_realtime.backoff import Backoff, Schedule
from supa_realtime.client import RealtimeClient, build_url, is_retryable
from supa_realtime.devserver import DevServer
from supa_realtime.exceptions import (
    AuthorizationError,
    ConfigurationError,
    ConnectionRefused,
    NotConnectedError,
)
from supa_realtime.phoenix.message import Message
from supa_realtime.testing.devserver import eventually

FAST: dict[str, Any] = {
    "timeout": 2.0,
    "reconnect_backoff": Backoff(initial=0.01, max_delay=0.05),
    "rejoin_backoff": Schedule((0.02,)),
}


def make_client(server: DevServer, **options: Any) -> RealtimeClient:
    return RealtimeClient(server.ws_url, server.anon_key, **{**FAST, **options})


@pytest.fixture
async def server() -> AsyncIterator[DevServer]:
    async with DevServer() as started:
        yield started


@pytest.fixture
async def clients() -> AsyncIterator[list[RealtimeClient]]:
    """Clients appended here are closed after the test."""
    made: list[RealtimeClient] = []
    yield made
    for client in made:
        await client.close()


# -- URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://abc.supabase.co", "wss://abc.supabase.co/realtime/v1/websocket"),
        ("http://127.0.0.1:54321/", "ws://127.0.0.1:54321/realtime/v1/websocket"),
        ("wss://abc.supabase.co/realtime/v1", "wss://abc.supabase.co/realtime/v1/websocket"),
        ("https://abc.supabase.co/realtime/v1", "wss://abc.supabase.co/realtime/v1/websocket"),
        ("ws://h:4000/socket/websocket", "ws://h:4000/socket/websocket"),
    ],
)
def test_build_url(url: str, expected: str) -> None:
    assert build_url(url, "KEY", "2.0.0") == expected + "?apikey=KEY&vsn=2.0.0"


def test_build_url_keeps_params_and_overrides_apikey_and_vsn() -> None:
    url = build_url("wss://h/realtime/v1?vsn=9&x=1", "K", "1.0.0", {"log_level": "info"})
    assert url == "wss://h/realtime/v1/websocket?x=1&log_level=info&apikey=K&vsn=1.0.0"


@pytest.mark.parametrize("url", ["ftp://h", "h:4000", "wss://"])
def test_bad_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError, match="Realtime URL"):
        RealtimeClient(url, "key")


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="vsn"):
        RealtimeClient("wss://h/realtime/v1", "key", vsn="3.0.0")
    with pytest.raises(ConfigurationError, match="api_key"):
        RealtimeClient("wss://h/realtime/v1", "")


def test_repr_and_url_hide_the_key() -> None:
    client = RealtimeClient("wss://h/realtime/v1", "SECRET-KEY")
    assert "SECRET-KEY" not in repr(client)
    assert "SECRET-KEY" not in client.url
    assert "apikey=<redacted>" in client.url


def test_retryable_errors() -> None:
    assert is_retryable(OSError("refused"))
    assert is_retryable(ConnectionRefused(503, "x"))
    assert is_retryable(ConnectionRefused(429, "Too many connected users"))
    assert not is_retryable(AuthorizationError(401, "x"))
    assert not is_retryable(ConnectionRefused(404, "Tenant not found"))


# -- connecting -----------------------------------------------------------------------------


async def test_connect_close_and_hooks(server: DevServer) -> None:
    events: list[Any] = []
    client = make_client(server)
    client.on_open(lambda: events.append("open"))
    client.on_close(lambda code, reason: events.append(("close", code, reason)))
    async with client:
        assert client.is_connected
        await eventually(lambda: server.connections == 1)
    assert not client.is_connected
    assert events == ["open", ("close", 1000, "client closed")]
    await eventually(lambda: server.connections == 0)
    # Every task the client started is finished.
    assert client._tasks == set()
    assert client._supervisor is None
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("supa_realtime")]


async def test_bad_key_is_an_authorization_error_with_the_server_reason(
    server: DevServer,
) -> None:
    bad = server.mint_key("anon", ttl=-10)  # expired
    client = RealtimeClient(server.ws_url, bad, **FAST)
    with pytest.raises(AuthorizationError) as info:
        await client.connect(retry=True)  # not retryable: raises at once
    assert info.value.status == 401
    assert info.value.reason == "Token has expired"
    assert bad not in str(info.value)
    assert not client.is_connected


async def test_http_error_is_connection_refused_and_retried_when_asked(
    server: DevServer, clients: list[RealtimeClient]
) -> None:
    server.faults.refuse_connections(1, 503, "Error connecting to Realtime")
    client = make_client(server)
    clients.append(client)
    with pytest.raises(ConnectionRefused) as info:
        await client.connect()
    assert (info.value.status, info.value.reason) == (503, "Error connecting to Realtime")
    assert not isinstance(info.value, AuthorizationError)

    errors: list[BaseException] = []
    client.on_error(errors.append)
    server.faults.refuse_connections(2, 500, "Error connecting to Realtime")
    await client.connect(retry=True)
    assert client.is_connected
    assert [type(e) for e in errors] == [ConnectionRefused, ConnectionRefused]


async def test_connect_gives_up_per_backoff(clients: list[RealtimeClient]) -> None:
    # Nothing listens on port 1 of loopback.
    client = RealtimeClient(
        "ws://127.0.0.1:1/realtime/v1",
        "key",
        reconnect_backoff=Backoff(initial=0.0, max_retries=2),
    )
    clients.append(client)
    errors: list[BaseException] = []
    client.on_error(errors.append)
    with pytest.raises(OSError, match=r"127\.0\.0\.1"):
        await client.connect(retry=True)
    assert len(errors) == 2


# -- reconnect ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 1011, 1012])
async def test_server_close_reconnects_and_rejoins(
    server: DevServer, clients: list[RealtimeClient], code: int
) -> None:
    client = make_client(server)
    clients.append(client)
    closes: list[tuple[int | None, str]] = []
    client.on_close(lambda c, r: closes.append((c, r)))
    received: list[Any] = []
    statuses: list[str] = []
    channel = client.channel("room1")
    channel.on_broadcast("ping", lambda m: received.append(m["payload"]))
    await channel.subscribe(lambda status, err: statuses.append(status))
    first_join = channel.join_ref

    await server.broadcast("room1", "ping", {"n": 1})
    await eventually(lambda: received == [{"n": 1}])

    assert await server.faults.close_all(code, "test close") == 1
    await eventually(lambda: client.reconnects == 1 and channel.is_joined)
    assert closes[0] == (code, "test close")
    assert channel.join_ref != first_join
    assert statuses == ["SUBSCRIBED", "CHANNEL_ERROR", "SUBSCRIBED"]
    assert server.subscribers("room1") == 1

    await server.broadcast("room1", "ping", {"n": 2})
    await eventually(lambda: received == [{"n": 1}, {"n": 2}])


async def test_reconnect_keeps_trying_while_the_server_refuses(
    server: DevServer, clients: list[RealtimeClient]
) -> None:
    client = make_client(server)
    clients.append(client)
    errors: list[BaseException] = []
    client.on_error(errors.append)
    channel = client.channel("room1")
    await channel.subscribe()
    server.faults.refuse_connections(3, 503, "Error connecting to Realtime")
    await server.faults.close_all(1012, "")
    await eventually(lambda: client.reconnects == 1 and channel.is_joined)
    assert sum(isinstance(e, ConnectionRefused) for e in errors) == 3


async def test_reconnect_gives_up_after_max_retries(
    server: DevServer, clients: list[RealtimeClient]
) -> None:
    client = make_client(server, reconnect_backoff=Backoff(initial=0.0, max_retries=1))
    clients.append(client)
    errors: list[BaseException] = []
    client.on_error(errors.append)
    await client.connect()
    server.faults.refuse_connections(5, 503, "Error connecting to Realtime")
    await server.faults.close_all(1011, "")
    await eventually(lambda: any("gave up" in str(e) for e in errors))
    gave_up = [e for e in errors if "gave up" in str(e)]
    assert len(gave_up) == 1
    assert isinstance(gave_up[0], NotConnectedError)
    assert str(gave_up[0]) == "gave up reconnecting after 1 tries"

    assert not client.is_connected
    # connect() starts over.
    server.faults.reset()
    await client.connect()
    assert client.is_connected


# -- heartbeat ------------------------------------------------------------------------------


async def test_heartbeats_are_refed_and_answered(
    server: DevServer, clients: list[RealtimeClient]
) -> None:
    client = make_client(server, heartbeat_interval=0.2)
    clients.append(client)
    beats: list[str] = []
    client.on_heartbeat(beats.append)
    seen: list[Message] = []
    client.on_message(seen.append)
    await client.connect()
    await eventually(lambda: beats.count("ok") >= 2)
    replies = [m for m in seen if m.topic == "phoenix"]
    assert all(m.event == "phx_reply" and m.ref for m in replies)
    assert len({m.ref for m in replies}) == len(replies)
    assert "timeout" not in beats


async def test_withheld_heartbeat_replies_force_a_reconnect(
    server: DevServer, clients: list[RealtimeClient]
) -> None:
    client = make_client(server, heartbeat_interval=0.2)
    clients.append(client)
    beats: list[str] = []
    client.on_heartbeat(beats.append)
    closes: list[tuple[int | None, str]] = []
    client.on_close(lambda c, r: closes.append((c, r)))
    received: list[Any] = []
    channel = client.channel("room1")
    channel.on_broadcast("*", lambda m: received.append(m["payload"]))
    await channel.subscribe()
    await eventually(lambda: "ok" in beats)

    server.faults.withhold_heartbeats = True
    withheld_at, reconnects = len(beats), client.reconnects
    await eventually(lambda: "timeout" in beats[withheld_at:])
    server.faults.withhold_heartbeats = False
    # The reconnect happened within two heartbeat intervals: at most two heartbeats were
    # sent unanswered before the client gave up on the socket.
    assert beats[withheld_at:].count("sent") <= 2
    await eventually(lambda: client.reconnects > reconnects and channel.is_joined)
    assert (1000, "heartbeat timeout") in closes

    await server.broadcast("room1", "after", {"ok": True})
    await eventually(lambda: received == [{"ok": True}])


async def test_heartbeat_timeout_option(server: DevServer, clients: list[RealtimeClient]) -> None:
    client = make_client(server, heartbeat_interval=0.2, heartbeat_timeout=0.05)
    clients.append(client)
    beats: list[str] = []
    client.on_heartbeat(beats.append)
    await client.connect()
    server.faults.withhold_heartbeats = True
    await eventually(lambda: "timeout" in beats)
    # A short timeout gives up on the very heartbeat that went unanswered.
    assert beats.count("sent") == beats.count("ok") + 1


# -- auth -----------------------------------------------------------------------------------


def _server_tokens(server: DevServer, topic: str) -> list[str]:
    return [ch.token for ch in server.context.hub.channels_on(topic)]


async def test_set_auth_is_sent_and_used_by_the_rejoin(
    server: DevServer, clients: list[RealtimeClient]
) -> None:
    first = server.mint_key("authenticated", sub="u1")
    client = make_client(server, access_token=first)
    clients.append(client)
    channel = client.channel("room1")
    await channel.subscribe()
    assert _server_tokens(server, "realtime:room1") == [first]

    second = server.mint_key("authenticated", sub="u1", session="2")
    await client.set_auth(second)
    assert client.access_token == second
    await eventually(lambda: _server_tokens(server, "realtime:room1") == [second])

    # Refresh while disconnected (reconnects are refused until the token is set): only
    # the rejoin can carry the new token to the server.
    errors: list[BaseException] = []
    client.on_error(errors.append)
    server.faults.refuse_connections(2, 503, "Error connecting to Realtime")
    await server.faults.close_all(1012, "")
    await eventually(lambda: any(isinstance(e, ConnectionRefused) for e in errors))
    assert not client.is_connected
    third = server.mint_key("authenticated", sub="u1", session="3")
    await client.set_auth(third)
    await eventually(lambda: client.reconnects == 1 and channel.is_joined)
    assert _server_tokens(server, "realtime:room1") == [third]


async def test_secrets_never_reach_the_logs(
    server: DevServer, clients: list[RealtimeClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = server.mint_key("authenticated", sub="u9")
    client = make_client(server, access_token=token, heartbeat_interval=0.05)
    clients.append(client)
    channel = client.channel("room1")
    await channel.subscribe()
    newer = server.mint_key("authenticated", sub="u9", session="x")
    await client.set_auth(newer)
    await server.faults.close_all(1000, "")
    await eventually(lambda: client.reconnects == 1 and channel.is_joined)
    await client.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "phx_join" in text  # wire traffic was logged...
    for secret in (server.anon_key, token, newer):
        assert secret not in text  # ...without any secret
        assert secret[-20:] not in text


# -- receive path ---------------------------------------------------------------------------


async def test_on_message_sees_every_decoded_message(
    server: DevServer, clients: list[RealtimeClient]
) -> None:
    client = make_client(server)
    clients.append(client)
    seen: list[Message] = []
    client.on_message(seen.append)
    channel = client.channel("room1")
    await channel.subscribe()
    await server.broadcast("room1", "e", {"x": 1})
    await eventually(lambda: any(m.event == "broadcast" for m in seen))
    assert seen[0].event == "phx_reply"
    assert seen[0].ref == channel.join_ref
    assert seen[-1].payload == {"type": "broadcast", "event": "e", "payload": {"x": 1}}


async def test_failing_callbacks_are_logged_and_processing_goes_on(
    server: DevServer, clients: list[RealtimeClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(server)
    clients.append(client)
    received: list[int] = []

    def explode(message: Any) -> None:
        raise RuntimeError("callback bug")

    async def explode_later(message: Any) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async callback bug")

    async def record(message: dict[str, Any]) -> None:
        received.append(message["payload"]["n"])

    client.on_message(explode)
    channel = client.channel("room1")
    channel.on_broadcast("*", explode).on_broadcast("*", explode_later).on_broadcast("*", record)
    await channel.subscribe()
    for n in range(3):
        await server.broadcast("room1", "e", {"n": n})
    await eventually(lambda: received == [0, 1, 2])
    failures = [r for r in caplog.records if r.exc_info and "callback" in r.getMessage()]
    assert any("callback bug" in str(r.exc_info[1]) for r in failures if r.exc_info)
    assert any("async callback bug" in str(r.exc_info[1]) for r in failures if r.exc_info)


async def test_undecodable_frames_are_dropped(
    server: DevServer, clients: list[RealtimeClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(server, vsn="1.0.0")
    clients.append(client)
    received: list[Any] = []
    channel = client.channel("room1")
    channel.on_broadcast("*", lambda m: received.append(m["payload"]))
    await channel.subscribe()
    # A binary frame cannot be decoded under vsn 1.0.0: the client drops it and goes on.
    assert client._ws is not None
    await _server_send_raw(server, b"\x09garbage")
    await server.broadcast("room1", "e", {"still": "here"})
    await eventually(lambda: received == [{"still": "here"}])
    assert any("cannot be decoded" in r.getMessage() for r in caplog.records)


async def _server_send_raw(server: DevServer, frame: str | bytes) -> None:
    for conn in server.context.connections:
        conn.queue_frame(frame)


async def test_callbacks_registered_as_decorators(
    server: DevServer, clients: list[RealtimeClient]
) -> None:
    client = make_client(server)
    clients.append(client)
    opened: list[bool] = []

    @client.on_open
    def _opened() -> None:
        opened.append(True)

    hook: Callable[[], None] = _opened
    await client.connect()
    assert opened == [True]
    assert callable(hook)
