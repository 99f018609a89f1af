"""End to end: rows changed with psycopg in a real PostgreSQL, read from its WAL by WalReader,
matched by the DevServer and received by the official ``realtime`` client and by ours."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from realtime import AsyncRealtimeClient
from realtime.types import RealtimePostgresChangesListenEvent as Listen

from supa_realtime.client import RealtimeClient
from supa_realtime.devserver.database import dsn_from_django
from supa_realtime.devserver.server import DevServer
from supa_realtime.devserver.wal import WalReader
from supa_realtime.events import PostgresChange
from supa_realtime.testing.devserver import eventually

WITHIN = 20.0
BINDINGS: list[tuple[str, str, str | None]] = [
    ("open", "*", "status=eq.open"),
    ("not_two", "INSERT", "id=neq.2"),
    ("one_or_three", "*", "id=in.(1,3)"),
    ("all", "*", None),
]
EXPECTED = {
    "open": [("INSERT", 1), ("INSERT", 3), ("UPDATE", 2), ("DELETE", 1)],
    "not_two": [("INSERT", 1), ("INSERT", 3)],
    "one_or_three": [("INSERT", 1), ("INSERT", 3), ("DELETE", 1)],
    "all": [("INSERT", 1), ("INSERT", 2), ("INSERT", 3), ("UPDATE", 2), ("DELETE", 1)],
}


def _key(data: dict[str, Any]) -> tuple[str, int]:
    row = data.get("record") if data["type"] != "DELETE" else data.get("old_record")
    assert row is not None
    return data["type"], int(row["id"])


class Wiring:
    """A DevServer fed by a WalReader; ``emitted`` keeps every ``data`` the reader produced."""

    def __init__(self, server: DevServer, dsn: str) -> None:
        self.server = server
        self.emitted: list[dict[str, Any]] = []
        self.reader = WalReader(dsn, on_change=self._emit, poll_interval=0.02)

    async def _emit(self, data: dict[str, Any]) -> None:
        self.emitted.append(data)
        await self.server.emit_change(data)


@pytest_asyncio.fixture
async def wiring(
    realtime_server: DevServer, postgres_dsn: str
) -> AsyncIterator[tuple[Wiring, AsyncConnection[Any]]]:
    conn = await AsyncConnection.connect(postgres_dsn, autocommit=True)
    await conn.execute(
        "CREATE TABLE todos (id int PRIMARY KEY, title text, status text);"
        "ALTER TABLE todos REPLICA IDENTITY FULL"  # so DELETE filters see every column
    )
    wired = Wiring(realtime_server, postgres_dsn)
    await wired.reader.start()
    try:
        yield wired, conn
    finally:
        await wired.reader.stop()
        await conn.close()


async def _make_changes(conn: AsyncConnection[Any]) -> None:
    await conn.execute("INSERT INTO todos VALUES (1, 'a', 'open')")
    await conn.execute("INSERT INTO todos VALUES (2, 'b', 'done')")
    async with conn.transaction(force_rollback=True):
        await conn.execute("INSERT INTO todos VALUES (9, 'never', 'open')")
    await conn.execute("INSERT INTO todos VALUES (3, 'c', 'open')")
    await conn.execute("UPDATE todos SET status = 'open' WHERE id = 2")
    await conn.execute("DELETE FROM todos WHERE id = 1")


async def test_official_client_gets_changes_through_filters(
    wiring: tuple[Wiring, AsyncConnection[Any]],
) -> None:
    wired, conn = wiring
    server = wired.server
    client = AsyncRealtimeClient(server.ws_url, server.anon_key, auto_reconnect=False)
    got: dict[str, list[Any]] = {name: [] for name, _, _ in BINDINGS}
    system: list[Any] = []
    try:
        channel = client.channel("db")
        for name, event, row_filter in BINDINGS:
            channel.on_postgres_changes(
                Listen(event),
                got[name].append,
                table="todos",
                schema="public",
                filter=row_filter,
            )
        channel.on_system(system.append)
        states: list[str] = []
        await channel.subscribe(lambda state, err: states.append(str(state)))
        await eventually(lambda: system, within=WITHIN)
        assert "SUBSCRIBED" in states[-1]
        assert system[0].message == "Subscribed to PostgreSQL"

        await _make_changes(conn)
        await eventually(lambda: len(got["all"]) >= 5, within=WITHIN)
    finally:
        await client.close()

    for name, _, _ in BINDINGS:
        assert [_key(p["data"]) for p in got[name]] == EXPECTED[name], name
    # Frames carry exactly what the reader produced, as JSON.
    assert [p["data"] for p in got["all"]] == json.loads(json.dumps(wired.emitted))
    delete = got["open"][-1]["data"]
    assert delete["old_record"] == {"id": 1, "title": "a", "status": "open"}
    assert "record" not in delete


async def test_our_client_gets_changes_through_filters(
    wiring: tuple[Wiring, AsyncConnection[Any]],
) -> None:
    wired, conn = wiring
    server = wired.server
    got: dict[str, list[PostgresChange]] = {name: [] for name, _, _ in BINDINGS}
    async with RealtimeClient(server.ws_url, server.anon_key) as client:
        channel = client.channel("db")
        for name, event, row_filter in BINDINGS:
            channel.on_postgres_changes(
                event,
                got[name].append,
                table="todos",
                filter=row_filter,
            )
        await channel.subscribe()
        await _make_changes(conn)
        await eventually(lambda: len(got["all"]) >= 5, within=WITHIN)

    for name, _, _ in BINDINGS:
        assert [_key(c.raw.payload["data"]) for c in got[name]] == EXPECTED[name], name
    update = got["open"][2]
    assert update.type == "UPDATE"
    assert update.record == {"id": 2, "title": "b", "status": "open"}
    assert update.old_record == {"id": 2, "title": "b", "status": "done"}
    assert [c["name"] for c in update.columns] == ["id", "title", "status"]
    assert update.errors is None


def _django_entry(postgres_dsn: str) -> dict[str, Any]:
    params = conninfo_to_dict(postgres_dsn)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": params["dbname"],
        "USER": params["user"],
        "HOST": params["host"],
        "PORT": params["port"],
    }


def _orm_changes(entry: dict[str, Any], blocker: Any) -> None:
    """Create, update and delete a Session with the Django ORM, on a second database alias."""
    from django.contrib.sessions.models import Session
    from django.db import connections

    alias = "wal_test"
    configured = connections.configure_settings({"default": {}, alias: entry})
    connections.settings[alias] = configured[alias]
    try:
        with blocker.unblock():
            with connections[alias].schema_editor() as editor:
                editor.create_model(Session)
            sessions = Session.objects.using(alias)
            session = sessions.create(
                session_key="k1",
                session_data="hello",
                expire_date=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
            )
            session.session_data = "changed"
            session.save(using=alias)
            sessions.filter(session_key="k1").delete()
            connections[alias].close()
    finally:
        del connections[alias]
        del connections.settings[alias]


async def test_django_orm_changes_reach_the_official_client(
    realtime_server: DevServer, postgres_dsn: str, django_db_blocker: Any
) -> None:
    entry = _django_entry(postgres_dsn)
    dsn = dsn_from_django(entry)  # what the server reads: the Django database's DSN
    assert dsn is not None
    reader = WalReader(dsn, on_change=realtime_server.emit_change, poll_interval=0.02)
    client = AsyncRealtimeClient(
        realtime_server.ws_url, realtime_server.anon_key, auto_reconnect=False
    )
    got: list[Any] = []
    system: list[Any] = []
    await reader.start()
    try:
        channel = client.channel("orm")
        channel.on_postgres_changes(Listen.All, got.append, table="django_session", schema="public")
        channel.on_system(system.append)
        await channel.subscribe()
        await eventually(lambda: system, within=WITHIN)
        await asyncio.to_thread(_orm_changes, entry, django_db_blocker)
        await eventually(lambda: len(got) >= 3, within=WITHIN)
    finally:
        await client.close()
        await reader.stop()

    insert, update, delete = (p["data"] for p in got)
    assert [d["type"] for d in (insert, update, delete)] == ["INSERT", "UPDATE", "DELETE"]
    assert insert["record"] == {
        "session_key": "k1",
        "session_data": "hello",
        "expire_date": "2030-01-02T03:04:05+00:00",
    }
    assert update["record"]["session_data"] == "changed"
    assert update["old_record"] == {"session_key": "k1"}
    assert delete["old_record"] == {"session_key": "k1"}
    assert insert["columns"] == [
        {"name": "session_key", "type": "varchar"},
        {"name": "session_data", "type": "text"},
        {"name": "expire_date", "type": "timestamptz"},
    ]
