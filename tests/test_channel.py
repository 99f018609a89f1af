"""Channels of the asyncio client (supa_realtime.channel) against the local Realtime server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from supa_realtime.backoff import Backoff, Schedule
from supa_realtime.channel import ChannelState, PostgresChange, RealtimeChannel
from supa_realtime.client import RealtimeClient
from supa_realtime.devserver import DevServer, Limits
from supa_realtime.exceptions import (
    BroadcastRejected,
    JoinError,
    JoinTimeout,
    LocalProtocolError,
    NotConnectedError,
    PushError,
    PushTimeout,
    RealtimeError,
)
from supa_realtime.phoenix.message import Message
from supa_realtime.testing.devserver import eventually

FAST: dict[str, Any] = {
    "timeout": 2.0,
    "reconnect_backoff": Backoff(initial=0.01, max_delay=0.05),
    "rejoin_backoff": Schedule((0.02,)),
}

Factory = Callable[..., RealtimeClient]


@pytest.fixture
async def server() -> AsyncIterator[DevServer]:
    async with DevServer(limits=Limits(max_payload_kb=1)) as started:
        yield started


@pytest.fixture
async def make(server: DevServer) -> AsyncIterator[Factory]:
    """``make(**options)`` builds a client for ``server``; all are closed after the test."""
    made: list[RealtimeClient] = []

    def factory(**options: Any) -> RealtimeClient:
        client = RealtimeClient(server.ws_url, server.anon_key, **{**FAST, **options})
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.close()


def payloads(received: list[dict[str, Any]]) -> list[Any]:
    return [m["payload"] for m in received]


# -- registry and subscribe -----------------------------------------------------------------


async def test_channel_registry(make: Factory) -> None:
    client = make()
    room = client.channel("room1", broadcast={"self": True})
    assert room.topic == "realtime:room1"
    assert client.channel("realtime:room1") is room
    assert client.get_channels() == [room]
    other = client.channel("room2")
    await room.subscribe()
    await other.subscribe()
    await client.remove_channel(room)
    assert room.state is ChannelState.CLOSED
    assert client.get_channels() == [other]
    await client.remove_all_channels()
    assert client.get_channels() == []
    assert client.is_connected  # removing channels keeps the socket


async def test_subscribe_reports_states_and_only_once(server: DevServer, make: Factory) -> None:
    client = make()
    statuses: list[tuple[str, Exception | None]] = []
    channel = client.channel("room1")
    assert await channel.subscribe(lambda s, e: statuses.append((s, e))) is channel
    assert statuses == [("SUBSCRIBED", None)]
    assert channel.is_joined
    assert server.subscribers("room1") == 1
    with pytest.raises(RealtimeError, match="already joined"):
        await channel.subscribe()
    await channel.unsubscribe()
    assert statuses[-1] == ("CLOSED", None)
    assert server.subscribers("room1") == 0
    assert client.get_channels() == []


async def test_join_refused_raises_then_is_retried_until_it_succeeds(
    server: DevServer, make: Factory
) -> None:
    client = make()
    statuses: list[str] = []
    server.faults.refuse_joins(2, "ChannelRateLimitReached: Too many channels", topic="room1")
    channel = client.channel("room1")
    with pytest.raises(JoinError) as info:
        await channel.subscribe(lambda s, e: statuses.append(s))
    assert info.value.reason == "ChannelRateLimitReached: Too many channels"
    await eventually(lambda: channel.is_joined)
    assert statuses == ["CHANNEL_ERROR", "CHANNEL_ERROR", "SUBSCRIBED"]
    assert server.subscribers("room1") == 1


async def test_join_timeout_is_retried_and_late_frames_of_the_old_join_are_dropped(
    server: DevServer, make: Factory
) -> None:
    client = make(timeout=0.2)
    statuses: list[str] = []
    received: list[dict[str, Any]] = []
    channel = client.channel("room1").on_broadcast("*", received.append)
    server.faults.reply_delay = 0.3  # every reply comes after the client gave up on it
    with pytest.raises(JoinTimeout):
        await channel.subscribe(lambda s, e: statuses.append(s))
    assert statuses[0] == "TIMED_OUT"
    server.faults.reply_delay = 0.0
    await eventually(lambda: channel.is_joined)
    # Late replies and the phx_close of the abandoned joins did not end the channel.
    await eventually(lambda: server.subscribers("room1") == 1)
    await server.broadcast("room1", "e", {"n": 1})
    await eventually(lambda: payloads(received) == [{"n": 1}])
    assert channel.is_joined
    assert statuses[-1] == "SUBSCRIBED"


async def test_subscribe_connects_the_client(make: Factory) -> None:
    client = make()
    assert not client.is_connected
    await client.channel("room1").subscribe()
    assert client.is_connected


# -- broadcast ------------------------------------------------------------------------------


@pytest.mark.parametrize("vsn", ["1.0.0", "2.0.0"])
async def test_broadcast_self_off_and_on(make: Factory, vsn: str) -> None:
    sender_client, peer_client = make(vsn=vsn), make(vsn=vsn)
    own: list[dict[str, Any]] = []
    peer: list[dict[str, Any]] = []
    quiet = sender_client.channel("room1", broadcast={"ack": True}).on_broadcast("*", own.append)
    listener = peer_client.channel("room1").on_broadcast("*", peer.append)
    await quiet.subscribe()
    await listener.subscribe()
    await quiet.send_broadcast("chat", {"text": "hi"})
    await listener.send_broadcast("chat", {"text": "back"})
    await eventually(lambda: payloads(own) == [{"text": "back"}])
    await eventually(lambda: payloads(peer) == [{"text": "hi"}])
    assert peer[0] == {"type": "broadcast", "event": "chat", "payload": {"text": "hi"}}

    echo: list[dict[str, Any]] = []
    loud = sender_client.channel("room2", broadcast={"self": True}).on_broadcast("*", echo.append)
    await loud.subscribe()
    await loud.send_broadcast("chat", {"text": "me"})
    await eventually(lambda: payloads(echo) == [{"text": "me"}])


async def test_broadcast_listeners_wildcard_and_case(server: DevServer, make: Factory) -> None:
    client = make()
    exact: list[Any] = []
    every: list[Any] = []
    channel = client.channel("room1")
    channel.on_broadcast("Cursor-Move", lambda m: exact.append(m["payload"]))
    channel.on_broadcast("*", lambda m: every.append(m["event"]))
    await channel.subscribe()
    await server.broadcast("room1", "cursor-MOVE", {"x": 1})
    await server.broadcast("room1", "other", {"x": 2})
    await eventually(lambda: every == ["cursor-MOVE", "other"])
    assert exact == [{"x": 1}]


async def test_binary_broadcast_under_v2(make: Factory) -> None:
    sender_client, peer_client = make(), make()
    got: list[dict[str, Any]] = []
    sender = sender_client.channel("room1", broadcast={"ack": True})
    listener = peer_client.channel("room1").on_broadcast("blob", got.append)
    await sender.subscribe()
    await listener.subscribe()
    await sender.send_broadcast("blob", b"\xde\xad\xbe\xef")
    await eventually(lambda: payloads(got) == [b"\xde\xad\xbe\xef"])


async def test_http_send(server: DevServer, make: Factory) -> None:
    sender_client, peer_client = make(), make()
    got: list[dict[str, Any]] = []
    await peer_client.channel("room1").on_broadcast("rest", got.append).subscribe()
    sender = sender_client.channel("room1")  # no join needed
    await sender.http_send("rest", {"via": "http"})
    await eventually(lambda: payloads(got) == [{"via": "http"}])
    with pytest.raises(BroadcastRejected) as info:
        await sender.http_send("", {"x": 1})
    assert info.value.status == 422


async def test_bytes_need_v2(make: Factory) -> None:
    channel = make(vsn="1.0.0").channel("room1")
    await channel.subscribe()
    with pytest.raises(LocalProtocolError, match=r"2\.0\.0"):
        await channel.send_broadcast("blob", b"\x00")


async def test_broadcast_ack_errors(server: DevServer, make: Factory) -> None:
    channel = make().channel("room1", broadcast={"ack": True})
    await channel.subscribe()
    await channel.send_broadcast("ok", {"small": True})  # acknowledged
    with pytest.raises(PushError) as info:
        await channel.send_broadcast("big", {"blob": "x" * 5000})
    assert info.value.response == "payload_size_exceeded"
    server.faults.reply_delay = 0.3
    with pytest.raises(PushTimeout):
        await channel.send_broadcast("slow", {}, timeout=0.05)
    server.faults.reply_delay = 0.0


async def test_pushes_are_buffered_until_joined_and_the_oldest_dropped(
    server: DevServer, make: Factory
) -> None:
    sender_client = make(push_buffer_size=2)
    peer_client = make()
    got: list[dict[str, Any]] = []
    listener = peer_client.channel("room1").on_broadcast("*", got.append)
    await listener.subscribe()
    server.faults.refuse_joins(1, "Unknown Error on Channel", topic="room1")
    sender = sender_client.channel("room1")
    with pytest.raises(JoinError):
        await sender.subscribe()
    assert not sender.is_joined  # errored, rejoin scheduled
    for n in range(3):
        await sender.send_broadcast("n", {"n": n})
    assert sender.dropped_pushes == 1
    assert sender_client.dropped_pushes == 1
    await eventually(lambda: payloads(got) == [{"n": 1}, {"n": 2}])


async def test_dropped_push_waiting_for_ack_fails(server: DevServer, make: Factory) -> None:
    client = make(push_buffer_size=1)
    server.faults.refuse_joins(1, "Unknown Error on Channel", topic="room1")
    channel = client.channel("room1", broadcast={"ack": True})
    with pytest.raises(JoinError):
        await channel.subscribe()
    first = asyncio.ensure_future(channel.send_broadcast("a", {}))
    await asyncio.sleep(0)  # let it reach the buffer
    second = asyncio.ensure_future(channel.send_broadcast("b", {}))
    with pytest.raises(PushError, match="push buffer full"):
        await first
    await second  # flushed after the rejoin and acknowledged


async def test_close_cancels_pending_rejoins_and_waiters(server: DevServer, make: Factory) -> None:
    client = make(rejoin_backoff=Schedule((30.0,)), push_buffer_size=5)
    statuses: list[str] = []
    server.faults.refuse_joins(1, "Unknown Error on Channel", topic="room1")
    channel = client.channel("room1", broadcast={"ack": True})
    with pytest.raises(JoinError):
        await channel.subscribe(lambda s, e: statuses.append(s))
    assert channel._rejoin_task is not None  # a rejoin waits 30 s
    pending = asyncio.ensure_future(channel.send_broadcast("e", {}))
    await asyncio.sleep(0)
    await client.close()
    with pytest.raises(NotConnectedError):
        await pending
    assert channel.state is ChannelState.CLOSED
    assert statuses == ["CHANNEL_ERROR", "CLOSED"]
    assert client._tasks == set()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("supa_realtime")]


async def test_push_on_a_closed_channel_is_refused(make: Factory) -> None:
    channel = make().channel("room1")
    with pytest.raises(NotConnectedError):
        await channel.send_broadcast("e", {})


# -- presence -------------------------------------------------------------------------------


async def test_presence_join_update_leave_and_sync(server: DevServer, make: Factory) -> None:
    watcher_client, member_client = make(), make()
    joins: list[tuple[str, list[Any], list[Any]]] = []
    leaves: list[tuple[str, list[Any], list[Any]]] = []
    syncs: list[int] = []
    watcher = watcher_client.channel("room1", presence={"key": "watcher"})
    watcher.on_presence_join(lambda k, cur, new: joins.append((k, cur, new)))
    watcher.on_presence_leave(lambda k, cur, left: leaves.append((k, cur, left)))
    watcher.on_presence_sync(lambda: syncs.append(len(syncs)))
    await watcher.subscribe()
    await eventually(lambda: syncs)  # the (empty) presence_state arrived

    member = member_client.channel("room1", presence={"key": "alice"})
    await member.subscribe()
    await member.track({"status": "online"})
    await eventually(lambda: "alice" in watcher.presence_state())
    assert [m["status"] for m in watcher.presence_state()["alice"]] == ["online"]
    assert joins[-1][0] == "alice"

    await member.track({"status": "away"})
    await eventually(
        lambda: [m["status"] for m in watcher.presence_state().get("alice", [])] == ["away"]
    )
    assert leaves[-1][0] == "alice"
    assert leaves[-1][2][0]["status"] == "online"

    await member.untrack()
    await eventually(lambda: "alice" not in watcher.presence_state())
    assert leaves[-1][1] == []  # nothing remains under the key
    expected = {k: v["metas"] for k, v in server.presence_state("room1").items()}
    assert watcher.presence_state() == expected


async def test_presence_is_tracked_again_after_a_reconnect(
    server: DevServer, make: Factory
) -> None:
    watcher_client, member_client = make(), make()
    joins: list[str] = []
    leaves: list[str] = []
    watcher = watcher_client.channel("room1", presence={"key": "watcher"})
    watcher.on_presence_join(lambda key, cur, new: joins.append(key))
    watcher.on_presence_leave(lambda key, cur, left: leaves.append(key))
    await watcher.subscribe()
    member = member_client.channel("room1", presence={"key": "bob"})
    await member.subscribe()
    await member.track({"name": "Bob"})
    await eventually(lambda: joins.count("bob") == 1)
    member_conns = [
        conn
        for conn in server.context.connections
        if any(ch.presence_key == "bob" for ch in conn.channels.values())
    ]
    assert len(member_conns) == 1
    await member_conns[0].close(1012, "drain")
    await eventually(lambda: leaves.count("bob") == 1)  # the server dropped bob...
    await eventually(lambda: joins.count("bob") == 2)  # ...and the rejoin tracked him again
    assert member_client.reconnects == 1
    assert [m["name"] for m in watcher.presence_state()["bob"]] == ["Bob"]


async def test_presence_diff_with_unknown_leave_key_keeps_later_leaves(
    server: DevServer, make: Factory
) -> None:
    watcher_client, member_client = make(), make()
    watcher = watcher_client.channel("room1", presence={"key": "w"})
    watcher.on_presence_sync(lambda: None)
    await watcher.subscribe()
    member = member_client.channel("room1", presence={"key": "carol"})
    await member.subscribe()
    await member.track({"n": 1})
    await eventually(lambda: "carol" in watcher.presence_state())
    carol = {"carol": {"metas": watcher.presence_state()["carol"]}}
    server.faults.presence_diff_unknown_leave("room1", then_leave=carol)
    await eventually(lambda: "carol" not in watcher.presence_state())


# -- postgres_changes and system ------------------------------------------------------------


def change(kind: str, record: dict[str, Any], table: str = "todos") -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema": "public",
        "table": table,
        "commit_timestamp": "2026-01-01T00:00:00.000Z",
        "type": kind,
        "columns": [{"name": "id", "type": "int8"}],
        "errors": None,
    }
    if kind != "DELETE":
        data["record"] = record
    if kind != "INSERT":
        data["old_record"] = {"id": record["id"]}
    return data


async def test_postgres_changes_routed_by_id_and_event(server: DevServer, make: Factory) -> None:
    client = make()
    filtered: list[PostgresChange] = []
    inserts: list[PostgresChange] = []
    systems: list[dict[str, Any]] = []
    channel = client.channel("db")
    channel.on_postgres_changes("*", filtered.append, table="todos", filter="id=eq.1")
    channel.on_postgres_changes("insert", inserts.append, table="todos")
    channel.on_system(systems.append)
    await channel.subscribe()
    await eventually(lambda: systems)
    assert systems[0]["message"] == "Subscribed to PostgreSQL"

    await server.emit_change(change("INSERT", {"id": 1, "title": "a"}))
    await server.emit_change(change("INSERT", {"id": 2, "title": "b"}))
    await server.emit_change(change("UPDATE", {"id": 1, "title": "c"}))
    await server.emit_change(change("INSERT", {"id": 3}, table="other"))
    await eventually(lambda: len(filtered) == 2 and len(inserts) == 2)
    assert [(c.type, c.record) for c in filtered] == [
        ("INSERT", {"id": 1, "title": "a"}),
        ("UPDATE", {"id": 1, "title": "c"}),
    ]
    assert [c.record["id"] for c in inserts if c.record] == [1, 2]
    first = filtered[0]
    assert first.raw.payload["data"]["table"] == "todos"
    assert set(first.ids) == set(first.raw.payload["ids"])
    assert len(first.ids) == 2  # both bindings matched the first insert


async def test_postgres_changes_system_error_does_not_rejoin(
    server: DevServer, make: Factory
) -> None:
    client = make()
    systems: list[dict[str, Any]] = []
    got: list[Any] = []
    channel = client.channel("db").on_system(systems.append)
    channel.on_broadcast("*", got.append)
    channel.on_postgres_changes("*", lambda c: None, table="todos")
    await channel.subscribe()
    join_ref = channel.join_ref
    await eventually(lambda: systems)
    server.faults.postgres_changes_error("db", "Unable to subscribe to changes")
    await eventually(lambda: len(systems) == 2)
    assert systems[1]["status"] == "error"
    await server.broadcast("db", "after", {})
    await eventually(lambda: got)
    assert channel.is_joined
    assert channel.join_ref == join_ref  # no rejoin
    assert server.subscribers("db") == 1


@pytest.mark.parametrize("vsn", ["1.0.0", "2.0.0"])
async def test_server_phx_close_ends_the_channel_for_good(
    server: DevServer, make: Factory, vsn: str
) -> None:
    client = make(vsn=vsn)
    statuses: list[str] = []
    systems: list[dict[str, Any]] = []
    channel = client.channel("room1").on_system(systems.append)
    await channel.subscribe(lambda s, e: statuses.append(s))
    await client.set_auth("not-a-jwt")  # the server stops the channel: system error, phx_close
    await eventually(lambda: channel.state is ChannelState.CLOSED)
    assert statuses == ["SUBSCRIBED", "CLOSED"]
    assert systems[0]["status"] == "error"
    assert client.get_channels() == []
    # Not rejoined: a round trip on another channel shows nothing came back.
    await client.set_auth(None)  # joins fall back to the API key
    await client.channel("other").subscribe()
    assert server.subscribers("room1") == 0
    assert client.channel("room1") is not channel


@pytest.mark.parametrize("vsn", ["1.0.0", "2.0.0"])
async def test_phx_error_rejoins_and_drops_the_stale_close(
    server: DevServer, make: Factory, vsn: str
) -> None:
    client = make(vsn=vsn)
    statuses: list[str] = []
    got: list[Any] = []
    channel = client.channel("room1").on_broadcast("*", got.append)
    await channel.subscribe(lambda s, e: statuses.append(s))
    old = channel.join_ref
    assert old is not None
    (conn,) = server.context.connections
    # The channel process "crashes"; the rejoin is a duplicate join for the server, which
    # closes the old join with a phx_close carrying the old join_ref.
    conn.queue_message(Message("realtime:room1", "phx_error", {}, ref=old, join_ref=old))
    await eventually(lambda: channel.is_joined and channel.join_ref != old)
    await server.broadcast("room1", "e", {"n": 1})
    await eventually(lambda: got)
    assert channel.is_joined
    assert statuses == ["SUBSCRIBED", "CHANNEL_ERROR", "SUBSCRIBED"]
    assert server.subscribers("room1") == 1


async def test_stale_pushes_are_dropped(server: DevServer, make: Factory) -> None:
    client = make()
    systems: list[dict[str, Any]] = []
    current: list[tuple[str, bool]] = []
    client.on_message(
        lambda m: (
            current.append((m.payload["message"], client.is_current(m)))
            if m.event == "system"
            else None
        )
    )
    channel = client.channel("room1").on_system(systems.append)
    await channel.subscribe()
    (conn,) = server.context.connections
    stale = {"extension": "system", "status": "ok", "message": "stale", "channel": "room1"}
    fresh = {**stale, "message": "fresh"}
    conn.queue_message(Message("realtime:room1", "system", stale, join_ref="999"))
    conn.queue_message(Message("realtime:room1", "system", fresh, join_ref=channel.join_ref))
    await eventually(lambda: systems)
    assert [s["message"] for s in systems] == ["fresh"]
    assert current == [("stale", False), ("fresh", True)]


async def test_set_auth_during_a_join_reaches_the_server(server: DevServer, make: Factory) -> None:
    first = server.mint_key("authenticated", sub="u1")
    client = make(access_token=first)
    channel = client.channel("room1")
    server.faults.reply_delay = 0.3  # the join is in flight while the token changes
    task = asyncio.ensure_future(channel.subscribe())
    await eventually(lambda: server.subscribers("room1") == 1)
    second = server.mint_key("authenticated", sub="u1", session="2")
    await client.set_auth(second)  # not joined yet: nothing pushed now
    await task
    server.faults.reply_delay = 0.0
    await eventually(
        lambda: [ch.token for ch in server.context.hub.channels_on("realtime:room1")] == [second]
    )


async def test_async_and_sync_callbacks(server: DevServer, make: Factory) -> None:
    client = make()
    got: list[str] = []

    async def later(message: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        got.append("async")

    channel: RealtimeChannel = client.channel("room1")
    channel.on_broadcast("e", later).on_broadcast("e", lambda m: got.append("sync"))
    await channel.subscribe()
    await server.broadcast("room1", "e", {})
    await eventually(lambda: sorted(got) == ["async", "sync"])


async def test_postgres_changes_binding_mismatch_is_a_channel_error(
    server: DevServer, make: Factory
) -> None:
    client = make(timeout=3.0)
    statuses: list[str] = []
    channel = client.channel("db")
    channel.on_postgres_changes("INSERT", lambda c: None, table="todos")
    server.faults.reply_delay = 0.5  # hold the real reply back...
    task = asyncio.ensure_future(channel.subscribe(lambda s, e: statuses.append(s)))
    await eventually(lambda: server.subscribers("db") == 1)
    (conn,) = server.context.connections
    # ...and answer first with bindings that do not match the client's.
    wrong = {"postgres_changes": [{"id": 7, "event": "INSERT", "schema": "public", "table": "x"}]}
    frame = server.context.hub.encode(
        conn.vsn,
        Message(
            "realtime:db",
            "phx_reply",
            {"status": "ok", "response": wrong},
            ref=channel.join_ref,
            join_ref=channel.join_ref,
        ),
    )
    assert isinstance(frame, str)
    await conn._send({"type": "websocket.send", "text": frame})  # overtakes the queue
    with pytest.raises(JoinError, match="mismatch between server and client bindings"):
        await task
    server.faults.reply_delay = 0.0
    await eventually(lambda: channel.state is ChannelState.CLOSED)
    assert statuses == ["CHANNEL_ERROR", "CLOSED"]
    assert client.get_channels() == []


async def test_interop_with_the_official_python_client(server: DevServer, make: Factory) -> None:
    from realtime import AsyncRealtimeClient

    official = AsyncRealtimeClient(server.ws_url, server.anon_key)
    theirs_got: list[Any] = []
    ours_got: list[dict[str, Any]] = []
    joined: list[str] = []
    try:
        their_channel = official.channel("room1")
        their_channel.on_broadcast("from-ours", lambda m: theirs_got.append(m["payload"]))
        await their_channel.subscribe()
        await eventually(lambda: server.subscribers("room1") == 1)

        ours = make()  # vsn 2.0.0: our broadcasts travel as binary kind 3
        channel = ours.channel("room1", presence={"key": "ours"})
        channel.on_broadcast("from-theirs", ours_got.append)
        channel.on_presence_join(lambda key, cur, new: joined.append(key))
        await channel.subscribe()
        await channel.send_broadcast("from-ours", {"n": 1})
        await their_channel.send_broadcast("from-theirs", {"n": 2})
        await their_channel.track({"who": "official"})
        await eventually(lambda: theirs_got == [{"n": 1}])
        await eventually(lambda: payloads(ours_got) == [{"n": 2}])
        await eventually(lambda: len(joined) == 1)
    finally:
        await official.close()
