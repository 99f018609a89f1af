"""postgres_changes: join reply ids, system messages, emitted changes (PROTOCOL.md §3.4, §4)."""

from __future__ import annotations

from typing import Any

import orjson
from realtime import AsyncRealtimeClient

from supa_realtime.devserver import DevServer
from supa_realtime.phoenix.filters import binding_id
from supa_realtime.phoenix.message import Message
from supa_realtime.testing.devserver import RawClient, eventually

TOPIC = "realtime:room1"
COLUMNS = [{"name": "id", "type": "int8"}, {"name": "title", "type": "text"}]


def change(
    kind: str = "INSERT", row_id: int = 1, table: str = "todos", **extra: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema": "public",
        "table": table,
        "commit_timestamp": "2026-11-22T00:00:00.000Z",
        "type": kind,
        "columns": COLUMNS,
        "errors": None,
    }
    if kind != "DELETE":
        data["record"] = {"id": row_id, "title": "t"}
    if kind != "INSERT":
        data["old_record"] = {"id": row_id}
    data.update(extra)
    return data


async def test_join_echoes_bindings_with_ids_and_subscribes(realtime_server: DevServer) -> None:
    bindings = [
        {"event": "*", "schema": "public", "table": "todos"},
        {
            "event": "INSERT",
            "schema": "public",
            "table": "todos",
            "filter": "id=eq.1",
            "extra": "kept",
        },
    ]
    async with await RawClient.connect(realtime_server, vsn=None) as client:
        await client.send(
            Message(TOPIC, "phx_join", {"config": {"postgres_changes": [*bindings, None]}}, ref="1")
        )
        reply = orjson.loads(await client.recv_raw())
        system = orjson.loads(await client.recv_raw())
    assert reply["payload"] == {
        "status": "ok",
        "response": {"postgres_changes": [{**b, "id": binding_id(b)} for b in bindings]},
    }
    assert system == {
        "topic": TOPIC,
        "event": "system",
        "payload": {
            "extension": "postgres_changes",
            "status": "ok",
            "message": "Subscribed to PostgreSQL",
            "channel": "room1",
        },
        "ref": None,
    }


async def test_identical_bindings_share_an_id(realtime_server: DevServer) -> None:
    binding = {"event": "*", "schema": "public", "table": "todos"}
    async with await RawClient.connect(realtime_server) as client:
        reply = await client.join(TOPIC, {"postgres_changes": [binding, dict(binding)]})
    ids = [entry["id"] for entry in reply.response["postgres_changes"]]
    assert ids[0] == ids[1]
    assert isinstance(ids[0], int)


async def test_emitted_change_reaches_matching_bindings_only(realtime_server: DevServer) -> None:
    all_rows = {"event": "*", "schema": "public", "table": "todos"}
    row_one = {"event": "INSERT", "schema": "public", "table": "todos", "filter": "id=eq.1"}
    async with (
        await RawClient.connect(realtime_server) as client,
        await RawClient.connect(realtime_server) as other,
    ):
        await client.join(TOPIC, {"postgres_changes": [all_rows, row_one]})
        await client.expect("system")
        await other.join(TOPIC, {"postgres_changes": [{"table": "elsewhere"}]})
        await other.expect("system")

        assert await realtime_server.emit_change(change(row_id=1)) == 1
        frame = await client.recv_raw()
        assert (
            frame
            == orjson.dumps(
                [
                    None,
                    None,
                    TOPIC,
                    "postgres_changes",
                    {"ids": [binding_id(all_rows), binding_id(row_one)], "data": change(row_id=1)},
                ]
            ).decode()
        )

        assert await realtime_server.emit_change(change(row_id=2)) == 1
        second = await client.recv()
        assert second.payload["ids"] == [binding_id(all_rows)]

        assert await realtime_server.emit_change(change(table="nobody")) == 0
        ref = await other.push("phoenix", "heartbeat", {})
        assert (await other.recv()).ref == ref  # nothing arrived before the heartbeat reply


async def test_errors_list_and_binding_error_message(realtime_server: DevServer) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.join(TOPIC, {"postgres_changes": [{"schema": "public", "table": "t"}]})
        await client.expect("system")
        data = change(table="t", errors=["Error 413: Payload Too Large"])
        await realtime_server.emit_change(data)
        got = await client.expect("postgres_changes")
        assert got.payload["data"]["errors"] == ["Error 413: Payload Too Large"]

        bad = {"schema": "public", "table": "t", "filter": "id=foo.1"}
        reply = await client.join("realtime:bad", {"postgres_changes": [bad]}, join_ref="9")
        system = await client.expect("system", topic="realtime:bad")
    assert reply.response == {"postgres_changes": [{**bad, "id": binding_id(bad)}]}
    assert system.join_ref == "9"
    assert system.payload["status"] == "error"
    assert system.payload["extension"] == "postgres_changes"
    assert system.payload["message"].startswith("Error parsing `filter` params")
    assert await realtime_server.emit_change(change(table="t")) == 1  # only the good channel


async def test_access_token_refresh_announces_subscription_again(
    realtime_server: DevServer,
) -> None:
    async with await RawClient.connect(realtime_server) as client:
        await client.join(TOPIC, {"postgres_changes": [{"table": "todos"}]}, join_ref="1")
        await client.expect("system")
        fresh = realtime_server.mint_key("authenticated", sub="u2")
        await client.push(TOPIC, "access_token", {"access_token": fresh}, join_ref="1")
        system = await client.expect("system")
    assert system.payload["message"] == "Subscribed to PostgreSQL"


async def test_official_client_filtered_binding(realtime_server: DevServer) -> None:
    client = AsyncRealtimeClient(
        realtime_server.ws_url, realtime_server.anon_key, auto_reconnect=False
    )
    got: list[dict[str, Any]] = []
    system: list[Any] = []
    try:
        channel = client.channel("db")
        channel.on_postgres_changes(
            "INSERT", got.append, table="todos", schema="public", filter="id=eq.7"
        )
        channel.on_system(system.append)
        states: list[str] = []
        await channel.subscribe(lambda state, err: states.append(str(state)))
        assert "SUBSCRIBED" in states[-1]
        await eventually(lambda: system)
        assert system[0].message == "Subscribed to PostgreSQL"

        assert await realtime_server.emit_change(change(row_id=8)) == 0  # filtered out
        assert await realtime_server.emit_change(change("UPDATE", row_id=7)) == 0  # INSERT only
        assert await realtime_server.emit_change(change(row_id=7)) == 1
        await eventually(lambda: got)
        assert len(got) == 1
        assert got[0]["data"]["record"] == {"id": 7, "title": "t"}
        assert got[0]["data"]["type"] == "INSERT"
    finally:
        await client.close()
