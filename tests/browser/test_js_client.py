"""supa-realtime.js in real headless Chromium against the local Realtime server."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import pytest
import websockets
from realtime import AsyncRealtimeClient
from realtime.types import BroadcastPayload
from websockets.asyncio.server import ServerConnection

from supa_realtime.devserver import DevServer
from supa_realtime.phoenix import constants as c
from supa_realtime.phoenix.message import Message, reply
from supa_realtime.phoenix.presence import (
    PresenceDiff,
    PresenceJoin,
    SyncOutcome,
    sync_diff,
    sync_state,
)
from supa_realtime.phoenix.serializer import V2Serializer, decode_binary
from supa_realtime.testing.browser import StaticServer, screenshot
from supa_realtime.testing.devserver import RawClient, eventually
from tests.browser.browser_support import (
    FULL_TOPIC,
    TOPIC,
    PageFactory,
    js,
    messages,
    open_chat,
    presence_names,
    start,
    until,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

DEADLINE_S = 10.0

# -- two users: presence and chat ---------------------------------------------------------


@pytest.mark.parametrize("vsn", [c.VSN_2, c.VSN_1])
async def test_two_users_see_each_other_and_chat(
    vsn: str, realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    alice = await open_chat(new_page, pages_server)
    bob = await open_chat(new_page, pages_server)
    assert await start(alice, realtime_server, "alice", vsn=vsn) == "ok"
    assert await start(bob, realtime_server, "bob", vsn=vsn) == "ok"

    for page in (alice, bob):
        await until(page, "document.querySelectorAll('#presence li').length === 2")
        assert await presence_names(page) == ["alice", "bob"]
    assert sorted(realtime_server.presence_state(TOPIC)) == ["alice", "bob"]

    await alice.fill("#message", "hello bob")
    await alice.click("#send")
    await alice.fill("#message", "are you there?")
    await alice.click("#send")
    await until(bob, "document.querySelectorAll('#messages li').length === 2")
    # Frames of one socket arrive in order, so the first message arrived exactly once.
    assert await messages(bob) == ["alicehello bob", "aliceare you there?"]
    assert await messages(alice) == []  # self is off

    await bob.fill("#message", "hi alice")
    await bob.click("#send")
    await until(alice, "document.querySelectorAll('#messages li').length === 1")
    assert await messages(alice) == ["bobhi alice"]
    path = await screenshot(bob, f"chat-{vsn}")
    assert path.stat().st_size > 0

    await bob.context.close()
    await until(alice, "document.querySelectorAll('#presence li').length === 1")
    assert await presence_names(alice) == ["alice"]
    assert await js(alice, "harness.count('leave', e => e.key === 'bob')") == 1
    await eventually(lambda: sorted(realtime_server.presence_state(TOPIC)) == ["alice"])


async def test_binary_broadcast_with_ack_and_self(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    sender = await open_chat(new_page, pages_server)
    receiver = await open_chat(new_page, pages_server)
    await start(sender, realtime_server, "s", ack=True, self=True, track=False)
    await start(receiver, realtime_server, "r", track=False)
    async with await RawClient.connect(realtime_server, vsn=c.VSN_2) as raw:
        assert (await raw.join(TOPIC)).payload["status"] == "ok"

        status = await js(
            sender,
            """() => harness.channel.send({type: 'broadcast', event: 'Blob',
                 payload: new Uint8Array([0xde, 0xad, 0xbe, 0xef])})""",
        )
        assert status == "ok"  # the ack reply
        for page in (sender, receiver):  # self: the sender gets it too
            event = await until(page, "harness.events.find(e => e.kind === 'broadcast')")
            assert event["event"] == "Blob"
            assert event["payload"] == {"bytes": [0xDE, 0xAD, 0xBE, 0xEF]}

        frame = await raw.recv_raw()
        assert isinstance(frame, bytes)  # kind 4, straight from the sender's kind 3
        assert frame == (
            b"\x04"
            + bytes([len("realtime:" + TOPIC), 4, 0, 0])
            + b"realtime:room:lobby"
            + b"Blob"
            + b"\xde\xad\xbe\xef"
        )
        message = decode_binary(frame)
        assert message.payload["payload"] == b"\xde\xad\xbe\xef"


async def test_wildcard_and_case_insensitive_broadcast_match(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    await start(page, realtime_server, "p", track=False)
    await js(
        page,
        """() => { harness.exact = [];
          harness.channel.on('broadcast', {event: 'news'}, m => harness.exact.push(m.event)); }""",
    )
    await realtime_server.broadcast(TOPIC, "NEWS", {"n": 1})
    await realtime_server.broadcast(TOPIC, "other", {"n": 2})
    await until(page, "harness.count('broadcast') === 2")
    assert await js(page, "harness.exact") == ["NEWS"]


# -- pushes before the join ---------------------------------------------------------------


async def test_pushes_wait_for_the_join_and_the_buffer_drops_the_oldest(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    sender = await open_chat(new_page, pages_server)
    receiver = await open_chat(new_page, pages_server)
    await start(receiver, realtime_server, "r", track=False)
    realtime_server.faults.refuse_joins(1, "Unknown Error on Channel", topic=TOPIC)
    results = await js(
        sender,
        """async (opts) => {
          const started = harness.start(opts);
          const sent = [1, 2, 3].map(n => harness.say(`m${n}`));
          await started;
          return {results: await Promise.all(sent), dropped: harness.channel.droppedPushes};
        }""",
        {
            "url": realtime_server.ws_url,
            "apikey": realtime_server.anon_key,
            "topic": TOPIC,
            "name": "s",
            "track": False,
            "pushBufferSize": 2,
        },
    )
    assert results == {"results": ["dropped", "ok", "ok"], "dropped": 1}
    await until(receiver, "document.querySelectorAll('#messages li').length === 2")
    assert await messages(receiver) == ["sm2", "sm3"]
    statuses = await js(sender, "harness.statuses")
    assert statuses == ["CHANNEL_ERROR: Unknown Error on Channel", "SUBSCRIBED"]


# -- database changes ---------------------------------------------------------------------


def todo_change(todo_id: int, kind: str = "INSERT") -> dict[str, Any]:
    return {
        "schema": "public",
        "table": "todos",
        "commit_timestamp": "2026-11-22T05:00:00.000Z",
        "type": kind,
        "columns": [{"name": "id", "type": "int8"}, {"name": "title", "type": "text"}],
        "record": {"id": todo_id, "title": f"todo {todo_id}"},
        "old_record": {"id": todo_id},
        "errors": None,
    }


async def test_filtered_database_change_arrives_and_others_do_not(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    bindings = [
        {"event": "INSERT", "schema": "public", "table": "todos", "filter": "id=eq.1"},
        {"event": "*", "schema": "public", "table": "todos", "filter": "id=eq.1"},
        {"event": "DELETE", "schema": "public", "table": "todos"},
    ]
    await start(page, realtime_server, "p", track=False, changes=bindings)
    await until(page, "harness.count('system') >= 1")
    system = await js(page, "harness.events.find(e => e.kind === 'system').payload")
    assert system["extension"] == "postgres_changes"
    assert system["status"] == "ok"

    assert await realtime_server.emit_change(todo_change(2)) == 0  # no binding matches
    assert await realtime_server.emit_change(todo_change(1, "UPDATE")) == 1
    assert await realtime_server.emit_change(todo_change(1)) == 1
    await until(page, "harness.count('change') === 3")
    changes = await js(
        page,
        "harness.events.filter(e => e.kind === 'change')"
        ".map(e => [e.binding.event, e.change.eventType, e.change.new.id])",
    )
    # The UPDATE only reaches the '*' binding; the INSERT reaches both filtered bindings.
    assert changes == [["*", "UPDATE", 1], ["INSERT", "INSERT", 1], ["*", "INSERT", 1]]
    change = await js(page, "harness.events.filter(e => e.kind === 'change')[1].change")
    assert change["old"] == {}
    assert change["table"] == "todos"
    assert change["commit_timestamp"] == "2026-11-22T05:00:00.000Z"


# -- losing the connection ----------------------------------------------------------------


@pytest.mark.parametrize("code", [c.CLOSE_SERVICE_RESTART, c.CLOSE_GOING_AWAY])
async def test_server_close_reconnects_rejoins_and_events_flow(
    code: int, realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    await start(page, realtime_server, "alice")
    assert await realtime_server.faults.close_all(code, "restart") == 1
    await until(page, "harness.client.stats.reconnects === 1")
    await until(page, "harness.statuses.filter(s => s === 'SUBSCRIBED').length === 2")
    await eventually(lambda: realtime_server.subscribers(TOPIC) == 1)
    # The presence of the old socket is gone and the rejoined channel tracked again.
    await until(page, "harness.channel.presenceState().alice?.length === 1")
    await eventually(lambda: len(realtime_server.presence_state(TOPIC)["alice"]["metas"]) == 1)
    await js(page, "harness.channel.track({name: 'alice', back: true})")
    await eventually(
        lambda: (
            [m.get("back") for m in realtime_server.presence_state(TOPIC)["alice"]["metas"]]
            == [True]
        )
    )
    await realtime_server.broadcast(TOPIC, "after", {"ok": True})
    event = await until(page, "harness.events.find(e => e.event === 'after')")
    assert event["payload"] == {"ok": True}


async def test_withheld_heartbeat_replies_reconnect(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    await start(page, realtime_server, "alice", heartbeatIntervalMs=100)
    await until(page, "harness.count('heartbeat', e => e.status === 'ok') >= 1")
    realtime_server.faults.withhold_heartbeats = True
    await until(page, "harness.client.stats.heartbeatTimeouts >= 1")
    realtime_server.faults.withhold_heartbeats = False
    await until(page, "harness.client.stats.reconnects >= 1 && harness.client.isConnected()")
    await until(page, "harness.channel.state === 'joined'")
    await eventually(lambda: realtime_server.subscribers(TOPIC) == 1)
    await realtime_server.broadcast(TOPIC, "after", {"ok": True})
    await until(page, "harness.events.some(e => e.event === 'after')")
    assert await js(page, "harness.count('heartbeat', e => e.status === 'timeout')") >= 1


async def test_refused_join_is_retried(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    reason = "RealtimeRestarting: Realtime is restarting, please standby"
    realtime_server.faults.refuse_joins(2, reason, topic=TOPIC)
    assert await start(page, realtime_server, "alice", track=False) == "SUBSCRIBED"
    assert await js(page, "harness.statuses") == [
        f"CHANNEL_ERROR: {reason}",
        f"CHANNEL_ERROR: {reason}",
        "SUBSCRIBED",
    ]
    assert realtime_server.subscribers(TOPIC) == 1


async def test_set_auth_sends_the_token_and_rejoins_with_it(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    await start(page, realtime_server, "alice", track=False)

    def server_token() -> str | None:
        channels = realtime_server.context.hub.channels_on(FULL_TOPIC)
        return channels[0].token if len(channels) == 1 else None

    assert server_token() == realtime_server.anon_key
    user_token = realtime_server.mint_key("authenticated", sub="user-1")
    await js(page, "token => harness.client.setAuth(token)", user_token)
    await eventually(lambda: server_token() == user_token)  # the access_token push

    await realtime_server.faults.close_all(c.CLOSE_SERVICE_RESTART)
    await until(page, "harness.client.stats.reconnects === 1 && harness.channel.state === 'joined'")
    await eventually(lambda: server_token() == user_token)
    channel = realtime_server.context.hub.channels_on(FULL_TOPIC)[0]
    assert channel.config.access_token == user_token  # carried by the rejoin's phx_join
    logs = "\n".join(await js(page, "harness.logs"))
    assert user_token not in logs
    assert realtime_server.anon_key not in logs


# -- presence edge cases ------------------------------------------------------------------


async def test_unknown_leave_key_is_skipped(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    alice = await open_chat(new_page, pages_server)
    await start(alice, realtime_server, "alice")
    async with await RawClient.connect(realtime_server, vsn=c.VSN_2) as raw:
        await raw.join(TOPIC, {"presence": {"key": "bob", "enabled": True}})
        await raw.push(FULL_TOPIC, "presence", {"event": "track", "payload": {"name": "bob"}})
        await until(alice, "document.querySelectorAll('#presence li').length === 2")
        bob = realtime_server.presence_state(TOPIC)["bob"]
        realtime_server.faults.presence_diff_unknown_leave(TOPIC, then_leave={"bob": bob})
        await until(alice, "document.querySelectorAll('#presence li').length === 1")
        assert await presence_names(alice) == ["alice"]


# -- interop with the official Python client ----------------------------------------------


async def test_browser_and_official_python_client_exchange_broadcasts(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    await start(page, realtime_server, "browser", track=False)
    client = AsyncRealtimeClient(realtime_server.ws_url, realtime_server.anon_key)
    got: list[BroadcastPayload] = []
    try:
        channel = client.channel(TOPIC)
        channel.on_broadcast("message", got.append)
        async with asyncio.timeout(DEADLINE_S):
            await channel.subscribe()
        await eventually(lambda: realtime_server.subscribers(TOPIC) == 2)

        await js(page, "harness.say('from the browser')")
        await eventually(lambda: len(got) == 1)
        assert got[0]["payload"] == {"from": "browser", "text": "from the browser"}

        async with asyncio.timeout(DEADLINE_S):
            await channel.send_broadcast("message", {"from": "python", "text": "from python"})
        await until(page, "document.querySelectorAll('#messages li').length === 1")
        assert await messages(page) == ["pythonfrom python"]
    finally:
        async with asyncio.timeout(DEADLINE_S):
            await client.close()


async def test_disconnect_and_remove_channel(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    await start(page, realtime_server, "alice")
    await eventually(lambda: "alice" in realtime_server.presence_state(TOPIC))
    assert await js(page, "harness.client.removeChannel(harness.channel)") == "ok"
    await eventually(lambda: realtime_server.subscribers(TOPIC) == 0)
    assert await js(page, "harness.statuses.at(-1)") == "CLOSED"
    assert await js(page, "harness.client.getChannels().length") == 0
    await js(page, "harness.client.disconnect()")
    await eventually(lambda: realtime_server.connections == 0)
    assert await js(page, "harness.client.connectionState()") == "closed"


async def test_the_script_loads_as_an_es_module_too(
    new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await new_page(f"{pages_server.url}/pages/chat.html")
    script = f"{pages_server.url}/static/supa_realtime/supa-realtime.js"
    loaded = await js(
        page,
        """async (url) => { delete globalThis.SupaRealtime; await import(url);
             return typeof globalThis.SupaRealtime.RealtimeClient; }""",
        script,
    )
    assert loaded == "function"
    url = await js(
        page,
        """() => new SupaRealtime.RealtimeClient('https://h.example/realtime/v1/',
             {apikey: 'k', params: {log_level: 'info'}}).endpointURL()""",
    )
    assert url == "wss://h.example/realtime/v1/websocket?apikey=k&log_level=info&vsn=2.0.0"


# -- slow replies, server-side closes, refused connections ---------------------------------


@pytest.mark.parametrize("vsn", [c.VSN_2, c.VSN_1])
async def test_join_timeout_rejoins_and_ignores_the_old_joins_frames(
    vsn: str, realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    realtime_server.faults.reply_delay = 0.6
    await js(
        page,
        "opts => { harness.start(opts); }",  # not awaited: the first join times out
        {
            "url": realtime_server.ws_url,
            "apikey": realtime_server.anon_key,
            "vsn": vsn,
            "topic": TOPIC,
            "name": "alice",
            "timeoutMs": 300,
        },
    )
    await until(page, "harness.statuses.includes('TIMED_OUT')")
    realtime_server.faults.reply_delay = 0
    await until(page, "harness.channel.state === 'joined'")
    # The timed-out join's late reply and the phx_close of its leave were not taken for
    # the current join's: the channel stays joined and events flow.
    await eventually(lambda: realtime_server.subscribers(TOPIC) == 1)
    await realtime_server.broadcast(TOPIC, "after", {"ok": True})
    await until(page, "harness.events.some(e => e.event === 'after')")
    statuses = await js(page, "harness.statuses")
    assert statuses[0] == "TIMED_OUT"
    assert statuses[-1] == "SUBSCRIBED"
    assert "CLOSED" not in statuses
    assert await js(page, "harness.logs.some(l => l.includes('stale'))")


async def test_server_closes_the_channel_after_a_bad_token(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    await start(page, realtime_server, "alice", track=False)
    await js(page, "harness.client.setAuth('not-a-jwt')")
    await until(page, "harness.statuses.at(-1) === 'CLOSED'")
    system = await js(page, "harness.events.find(e => e.kind === 'system').payload")
    assert system["status"] == "error"
    assert system["message"] == "The token provided is not a valid JWT"
    assert await js(page, "harness.client.getChannels().length") == 0
    await eventually(lambda: realtime_server.subscribers(TOPIC) == 0)
    assert await js(page, "harness.client.isConnected()")  # the socket stays


async def test_refused_connections_are_retried(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    realtime_server.faults.refuse_connections(2, 503, "Error connecting to Realtime")
    assert await start(page, realtime_server, "alice", track=False) == "SUBSCRIBED"
    assert await js(page, "harness.client.stats.connects") == 1
    statuses = await js(page, "harness.statuses")
    assert statuses[-1] == "SUBSCRIBED"
    assert all(s.startswith("CHANNEL_ERROR: socket closed") for s in statuses[:-1])
    assert realtime_server.faults.take_handshake_refusal() is None  # both were used up


async def test_disconnect_then_connect_rejoins(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    await start(page, realtime_server, "alice")
    await js(page, "harness.client.disconnect()")
    await eventually(lambda: realtime_server.connections == 0)
    await js(page, "harness.client.connect()")
    await until(page, "harness.statuses.filter(s => s === 'SUBSCRIBED').length === 2")
    await eventually(lambda: "alice" in realtime_server.presence_state(TOPIC))
    assert await js(page, "harness.client.stats") == {
        "connects": 2,
        "reconnects": 1,
        "heartbeatTimeouts": 0,
    }


# -- the presence algorithm against the Python implementation -----------------------------


def _random_entries(rng: random.Random, keys: list[str], refs: list[str]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for key in rng.sample(keys, rng.randint(0, len(keys))):
        picked = rng.sample(refs, rng.randint(1, 3))
        state[key] = [{"phx_ref": ref, "n": rng.randint(0, 9)} for ref in picked]
    return state


def _wire(state: dict[str, Any]) -> dict[str, Any]:
    return {key: {"metas": metas} for key, metas in state.items()}


def _events(outcome: SyncOutcome) -> list[list[Any]]:
    return [
        ["join", e.key, e.current, e.new]
        if isinstance(e, PresenceJoin)
        else ["leave", e.key, e.current, e.left]
        for e in outcome.events
    ]


async def test_presence_sync_matches_the_python_implementation(
    new_page: PageFactory, pages_server: StaticServer
) -> None:
    rng = random.Random(7)
    keys, refs = ["a", "b", "c", "d"], [f"r{i}" for i in range(6)]
    cases: list[dict[str, Any]] = []
    expected: list[dict[str, Any]] = []
    for _ in range(300):
        state = _random_entries(rng, keys, refs)
        new_state = _random_entries(rng, keys, refs)
        joins = _random_entries(rng, keys, refs)
        leaves = _random_entries(rng, [*keys, "unknown"], refs)
        synced = sync_state(state, new_state)
        diffed = sync_diff(synced.state, PresenceDiff(joins, leaves))
        cases.append(
            {
                "state": _wire(state),
                "newState": _wire(new_state),
                "diff": {"joins": _wire(joins), "leaves": _wire(leaves)},
            }
        )
        expected.append({"state": _wire(diffed.state), "events": _events(synced) + _events(diffed)})
    page = await new_page(f"{pages_server.url}/pages/chat.html")
    got = await js(
        page,
        """cases => cases.map(({state, newState, diff}) => {
          const events = [];
          const metas = (entry) => (entry ? entry.metas : []);
          const onJoin = (key, current, joined) =>
            events.push(['join', key, metas(current), metas(joined)]);
          const onLeave = (key, current, left) =>
            events.push(['leave', key, metas(current), metas(left)]);
          let next = SupaRealtime.Presence.syncState(state, newState, onJoin, onLeave);
          next = SupaRealtime.Presence.syncDiff(next, diff, onJoin, onLeave);
          return {state: next, events: JSON.parse(JSON.stringify(events))};
        })""",
        cases,
    )
    assert got == expected


# -- a peer that answers the join with other postgres_changes bindings ---------------------


async def test_postgres_changes_binding_mismatch_is_a_channel_error(
    new_page: PageFactory, pages_server: StaticServer
) -> None:
    serializer = V2Serializer("server")
    received: list[Message] = []

    async def lying_server(ws: ServerConnection) -> None:
        async for frame in ws:
            message = serializer.decode(frame)
            received.append(message)
            if message.event == c.PHX_JOIN:
                wrong = [{"id": 1, "event": "*", "schema": "public", "table": "other"}]
                response = {"postgres_changes": wrong}
                await ws.send(serializer.encode(reply(message, c.STATUS_OK, response)))
            elif message.event == c.PHX_LEAVE:
                await ws.send(serializer.encode(reply(message, c.STATUS_OK, {})))

    async with websockets.serve(lying_server, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        page = await open_chat(new_page, pages_server)
        outcome = await js(
            page,
            """opts => harness.start(opts).then(() => 'subscribed', (e) => e.message)""",
            {
                "url": f"ws://127.0.0.1:{port}/realtime/v1",
                "apikey": "k",
                "topic": TOPIC,
                "name": "p",
                "changes": [{"event": "*", "schema": "public", "table": "todos"}],
            },
        )
        assert outcome == "mismatch between server and client bindings for postgres changes"
        await eventually(lambda: [m.event for m in received] == [c.PHX_JOIN, c.PHX_LEAVE])
        statuses = await js(page, "harness.statuses")
        assert statuses[0] == f"CHANNEL_ERROR: {outcome}"
        assert await js(page, "harness.channel.state") == "closed"
        await js(page, "harness.client.disconnect()")


async def test_channel_crash_on_the_server_rejoins(
    realtime_server: DevServer, new_page: PageFactory, pages_server: StaticServer
) -> None:
    page = await open_chat(new_page, pages_server)
    await start(page, realtime_server, "alice")
    assert realtime_server.faults.crash_channels(TOPIC) == 1
    await until(page, "harness.statuses.filter(s => s === 'SUBSCRIBED').length === 2")
    assert await js(page, "harness.statuses") == [
        "SUBSCRIBED",
        "CHANNEL_ERROR: channel error",
        "SUBSCRIBED",
    ]
    assert await js(page, "harness.client.stats.connects") == 1  # the socket stayed
    await eventually(
        lambda: len(realtime_server.presence_state(TOPIC).get("alice", {}).get("metas", [])) == 1
    )


async def test_heartbeats_keep_their_schedule_while_frames_pour_in(
    new_page: PageFactory, pages_server: StaticServer
) -> None:
    # The server closes sockets that send nothing for 1 s; inbound broadcasts must not
    # delay the client's heartbeats (realtime-js#94 reset its timer on every message).
    server = DevServer(idle_timeout=1.0)
    await server.start()
    try:
        page = await open_chat(new_page, pages_server)
        await start(page, server, "alice", heartbeatIntervalMs=150, track=False)

        async def flood() -> None:
            for i in range(1000):
                await server.broadcast(TOPIC, "noise", {"i": i})
                await asyncio.sleep(0.005)  # pacing of the load, not a wait

        task = asyncio.create_task(flood())
        try:
            await until(page, "harness.count('heartbeat', e => e.status === 'ok') >= 12")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert await js(page, "harness.client.stats.connects") == 1
        assert await js(page, "harness.count('broadcast')") > 12
    finally:
        await server.stop()
