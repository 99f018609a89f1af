"""WalReader against a real PostgreSQL cluster (wal_level=logical, wal2json)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from psycopg import AsyncConnection

from supa_realtime.devserver.wal import WalReader, redact_dsn
from supa_realtime.devserver.wal2json import ERROR_NO_PRIMARY_KEY, ERROR_PAYLOAD_TOO_LARGE
from supa_realtime.exceptions import PrerequisiteError
from supa_realtime.testing.postgres import running_postgres

DEADLINE = 20.0
TS_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Changes:
    """An ``on_change`` handler that records what it gets and can be waited on."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()

    async def __call__(self, data: dict[str, Any]) -> None:
        self.items.append(data)
        self._arrived.set()

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(DEADLINE):
            while len(self.items) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.items


MakeReader = Callable[..., Awaitable[tuple[WalReader, Changes]]]


@pytest_asyncio.fixture
async def make_reader(postgres_dsn: str) -> AsyncIterator[MakeReader]:
    readers: list[WalReader] = []

    async def make(**kwargs: Any) -> tuple[WalReader, Changes]:
        changes = Changes()
        reader = WalReader(postgres_dsn, on_change=changes, poll_interval=0.02, **kwargs)
        await reader.start()
        readers.append(reader)
        return reader, changes

    yield make
    for reader in readers:
        await reader.stop()


@pytest_asyncio.fixture
async def pg(postgres_dsn: str) -> AsyncIterator[AsyncConnection[Any]]:
    conn = await AsyncConnection.connect(postgres_dsn, autocommit=True)
    await conn.execute("SET TimeZone = 'UTC'")
    yield conn
    await conn.close()


async def _slots(pg: AsyncConnection[Any]) -> dict[str, tuple[Any, ...]]:
    cur = await pg.execute(
        "SELECT slot_name, plugin, slot_type, temporary FROM pg_replication_slots"
    )
    return {row[0]: row for row in await cur.fetchall()}


# --- shapes -------------------------------------------------------------------------------


async def test_insert_update_delete_shapes(
    make_reader: MakeReader, pg: AsyncConnection[Any]
) -> None:
    await pg.execute(
        "CREATE TABLE todos (id bigint PRIMARY KEY, title text, done bool, "
        "created_at timestamptz NOT NULL DEFAULT now())"
    )
    _, changes = await make_reader()
    before = datetime.now(UTC)
    await pg.execute("INSERT INTO todos (id, title, done) VALUES (46, 'content', false)")
    await pg.execute("UPDATE todos SET done = true WHERE id = 46")
    await pg.execute("DELETE FROM todos WHERE id = 46")
    insert, update, delete = await changes.wait_for(3)
    cur = await pg.execute("SELECT now()")
    row = await cur.fetchone()
    assert row is not None

    columns = [
        {"name": "id", "type": "int8"},
        {"name": "title", "type": "text"},
        {"name": "done", "type": "bool"},
        {"name": "created_at", "type": "timestamptz"},
    ]
    created_at = insert["record"]["created_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", created_at)
    assert insert == {
        "schema": "public",
        "table": "todos",
        "type": "INSERT",
        "commit_timestamp": insert["commit_timestamp"],
        "columns": columns,
        "record": {"id": 46, "title": "content", "done": False, "created_at": created_at},
        "errors": None,
    }
    assert update == {
        "schema": "public",
        "table": "todos",
        "type": "UPDATE",
        "commit_timestamp": update["commit_timestamp"],
        "columns": columns,
        "record": {"id": 46, "title": "content", "done": True, "created_at": created_at},
        "old_record": {"id": 46},
        "errors": None,
    }
    assert delete == {
        "schema": "public",
        "table": "todos",
        "type": "DELETE",
        "commit_timestamp": delete["commit_timestamp"],
        "columns": columns,
        "old_record": {"id": 46},
        "errors": None,
    }
    stamps = [c["commit_timestamp"] for c in (insert, update, delete)]
    assert all(TS_FORMAT.match(s) for s in stamps)
    assert stamps == sorted(stamps)
    first = datetime.fromisoformat(stamps[0].replace("Z", "+00:00"))
    assert before - timedelta(milliseconds=1) <= first <= row[0]


async def test_values_are_what_to_jsonb_gives(
    make_reader: MakeReader, pg: AsyncConnection[Any]
) -> None:
    await pg.execute(
        """
        CREATE TYPE mood AS ENUM ('sad', 'happy');
        CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
        CREATE TABLE wide (
            id int8 PRIMARY KEY, i2 int2, i4 int4, f4 float4, f8 float8, n numeric,
            b bool, t text, vc varchar(10), bp char(5), ts timestamp, tstz timestamptz,
            d date, tm time, tmtz timetz, iv interval, j json, jb jsonb, u uuid,
            ta text[], ia int4[], ia2 int4[][], na numeric[], ba bool[], jba jsonb[],
            tsa timestamptz[], m mood, ma mood[], p posint, pa posint[], inet inet,
            money money, pt point, r int4range, o oid, e text
        )
        """
    )
    _, changes = await make_reader()
    await pg.execute(
        """
        INSERT INTO wide VALUES (
            1, -2, 3, 1.1, 2.718281828459045, 12.50, true, 'hé"llo, {world}', 'vc', 'ab',
            '2025-11-03 09:32:55.123456', '2025-11-03 09:32:55+00', '2025-11-03', '09:32:55',
            '09:32:55+05:30', '1 day 02:00', '{"a": 1, "a": 2, "n": [1.0, null]}',
            '{"b": [1, 2.50], "c": {"d": "e"}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
            '{"a b",NULL,"c\\"d","x,y",""}', '{1,2,3}', '{{1,2},{3,4}}', '{1.5,-2}',
            '{t,f}', ARRAY['{"x": 1}'::jsonb, '[1]'::jsonb],
            '{"2025-11-03 09:32:55+00","infinity"}', 'happy', '{sad,happy}', 5, '{1,2}',
            '192.168.0.1/24', 1.5, '(1,2)', '[1,5)', 12, NULL
        )
        """
    )
    (change,) = await changes.wait_for(1)
    cur = await pg.execute("SELECT to_jsonb(w) FROM wide w")
    row = await cur.fetchone()
    assert row is not None
    expected = dict(row[0])
    assert change["record"] == expected
    assert [c["type"] for c in change["columns"]] == [
        "int8", "int2", "int4", "float4", "float8", "numeric", "bool", "text", "varchar",
        "bpchar", "timestamp", "timestamptz", "date", "time", "timetz", "interval", "json",
        "jsonb", "uuid", "_text", "_int4", "_int4", "_numeric", "_bool", "_jsonb",
        "_timestamptz", "mood", "_mood", "posint", "_posint", "inet", "money", "point",
        "int4range", "oid", "text",
    ]  # fmt: skip


async def test_bytea_is_bare_hex(make_reader: MakeReader, pg: AsyncConnection[Any]) -> None:
    await pg.execute("CREATE TABLE files (id int PRIMARY KEY, data bytea)")
    _, changes = await make_reader()
    await pg.execute("INSERT INTO files VALUES (1, '\\x0102030405')")
    (change,) = await changes.wait_for(1)
    assert change["record"] == {"id": 1, "data": "0102030405"}


async def test_primary_key_change_gives_the_old_key(
    make_reader: MakeReader, pg: AsyncConnection[Any]
) -> None:
    await pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    await pg.execute("INSERT INTO t VALUES (1, 'a')")
    _, changes = await make_reader()
    await pg.execute("UPDATE t SET id = 2")
    (change,) = await changes.wait_for(1)
    assert change["old_record"] == {"id": 1}
    assert change["record"] == {"id": 2, "v": "a"}


async def test_replica_identity_full_gives_whole_old_records(
    make_reader: MakeReader, pg: AsyncConnection[Any]
) -> None:
    await pg.execute(
        "CREATE TABLE plain (id int PRIMARY KEY, a text, b int);"
        "CREATE TABLE full_t (id int PRIMARY KEY, a text, b int);"
        "ALTER TABLE full_t REPLICA IDENTITY FULL;"
        "INSERT INTO plain VALUES (1, 'x', 7); INSERT INTO full_t VALUES (1, 'x', 7)"
    )
    _, changes = await make_reader()
    await pg.execute("UPDATE plain SET a = 'y'; UPDATE full_t SET a = 'y'")
    await pg.execute("DELETE FROM plain; DELETE FROM full_t")
    plain_update, full_update, plain_delete, full_delete = await changes.wait_for(4)
    assert (plain_update["table"], full_update["table"]) == ("plain", "full_t")
    assert plain_update["old_record"] == {"id": 1}
    assert full_update["old_record"] == {"id": 1, "a": "x", "b": 7}
    assert plain_delete["old_record"] == {"id": 1}
    assert full_delete["old_record"] == {"id": 1, "a": "y", "b": 7}
    assert [c["name"] for c in plain_delete["columns"]] == ["id", "a", "b"]


async def test_unchanged_toast_value_comes_from_the_old_row_with_full_identity(
    make_reader: MakeReader, pg: AsyncConnection[Any]
) -> None:
    big = os.urandom(6000).hex()  # incompressible: stored out of line
    await pg.execute(
        "CREATE TABLE docs (id int PRIMARY KEY, title text, body text);"
        "CREATE TABLE docs_full (id int PRIMARY KEY, title text, body text);"
        "ALTER TABLE docs_full REPLICA IDENTITY FULL"
    )
    await pg.execute("INSERT INTO docs VALUES (1, 'a', %s)", (big,))
    await pg.execute("INSERT INTO docs_full VALUES (1, 'a', %s)", (big,))
    _, changes = await make_reader()
    await pg.execute("UPDATE docs SET title = 'b'")
    await pg.execute("UPDATE docs_full SET title = 'b'")
    plain, full = await changes.wait_for(2)
    assert plain["record"] == {"id": 1, "title": "b"}  # as Supabase: nothing to fill it from
    assert full["record"] == {"id": 1, "title": "b", "body": big}


async def test_table_without_primary_key_gives_an_error_row(
    make_reader: MakeReader, pg: AsyncConnection[Any]
) -> None:
    await pg.execute("CREATE TABLE nopk (a int, b text)")
    _, changes = await make_reader()
    await pg.execute("INSERT INTO nopk VALUES (1, 'x')")
    (change,) = await changes.wait_for(1)
    assert change == {
        "schema": "public",
        "table": "nopk",
        "type": "INSERT",
        "commit_timestamp": None,
        "columns": [],
        "record": {},
        "errors": [ERROR_NO_PRIMARY_KEY],
    }


async def test_oversize_record_follows_the_413_rule(
    make_reader: MakeReader, pg: AsyncConnection[Any]
) -> None:
    await pg.execute("CREATE TABLE notes (id int PRIMARY KEY, short text, long text)")
    _, changes = await make_reader(max_record_bytes=500)
    await pg.execute("INSERT INTO notes VALUES (1, 'tiny', %s)", ("z" * 400,))
    await pg.execute("INSERT INTO notes VALUES (2, 'tiny', 'also tiny')")
    over, under = await changes.wait_for(2)
    assert over["errors"] == [ERROR_PAYLOAD_TOO_LARGE]
    assert over["record"] == {"id": 1, "short": "tiny"}
    assert [c["name"] for c in over["columns"]] == ["id", "short", "long"]
    assert under["errors"] is None
    assert under["record"] == {"id": 2, "short": "tiny", "long": "also tiny"}


# --- transactions and order ---------------------------------------------------------------


async def test_rolled_back_transaction_produces_nothing(
    make_reader: MakeReader, pg: AsyncConnection[Any]
) -> None:
    await pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    reader, changes = await make_reader()
    async with pg.transaction(force_rollback=True):
        await pg.execute("INSERT INTO t SELECT generate_series(1, 10)")
    await pg.execute("INSERT INTO t VALUES (100)")
    items = await changes.wait_for(1)
    assert await reader.poll() == 0
    assert [c["record"]["id"] for c in items] == [100]


async def test_thousand_inserts_in_one_transaction_arrive_in_order(
    make_reader: MakeReader, pg: AsyncConnection[Any]
) -> None:
    await pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    _, changes = await make_reader(max_changes=100)
    async with pg.transaction(), pg.cursor() as cur:
        await cur.executemany(
            "INSERT INTO t VALUES (%s, %s)", [(i, f"row {i}") for i in range(1, 1001)]
        )
    items = await changes.wait_for(1000)
    assert len(items) == 1000
    assert [c["record"]["id"] for c in items] == list(range(1, 1001))
    assert {c["type"] for c in items} == {"INSERT"}
    assert len({c["commit_timestamp"] for c in items}) == 1


async def test_interleaved_transactions_arrive_in_commit_order(
    make_reader: MakeReader, pg: AsyncConnection[Any], postgres_dsn: str
) -> None:
    await pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    _, changes = await make_reader()
    other = await AsyncConnection.connect(postgres_dsn)
    try:
        await other.execute("INSERT INTO t VALUES (1)")  # opens a transaction, not committed
        await pg.execute("INSERT INTO t VALUES (2)")  # commits first
        await other.execute("INSERT INTO t VALUES (3)")
        await other.commit()
    finally:
        await other.close()
    items = await changes.wait_for(3)
    assert [c["record"]["id"] for c in items] == [2, 1, 3]


# --- which tables -------------------------------------------------------------------------


async def test_tables_filter(make_reader: MakeReader, pg: AsyncConnection[Any]) -> None:
    await pg.execute(
        "CREATE SCHEMA app; CREATE TABLE public.a (id int PRIMARY KEY);"
        "CREATE TABLE public.b (id int PRIMARY KEY); CREATE TABLE app.c (id int PRIMARY KEY)"
    )
    only_a, a_changes = await make_reader(tables=["public.a"])
    public, public_changes = await make_reader(tables=["public.*"], exclude_tables=["b"])
    everything, all_changes = await make_reader(exclude_tables=["public.a"])
    for table in ("public.b", "app.c", "public.a"):
        await pg.execute(f"INSERT INTO {table} VALUES (1)")
    await a_changes.wait_for(1)
    await public_changes.wait_for(1)
    await all_changes.wait_for(2)
    for reader in (only_a, public, everything):
        assert await reader.poll() == 0
    assert [(c["schema"], c["table"]) for c in a_changes.items] == [("public", "a")]
    assert [(c["schema"], c["table"]) for c in public_changes.items] == [("public", "a")]
    assert [(c["schema"], c["table"]) for c in all_changes.items] == [
        ("public", "b"),
        ("app", "c"),
    ]


async def test_publication_is_read_at_every_poll(
    make_reader: MakeReader, pg: AsyncConnection[Any]
) -> None:
    await pg.execute(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);"
        "CREATE PUBLICATION supabase_realtime FOR TABLE a"
    )
    _, changes = await make_reader(publication="supabase_realtime")
    await pg.execute("INSERT INTO b VALUES (1); INSERT INTO a VALUES (1)")
    await changes.wait_for(1)
    await pg.execute("ALTER PUBLICATION supabase_realtime ADD TABLE b")
    await pg.execute("INSERT INTO b VALUES (2)")
    await changes.wait_for(2)
    assert [(c["table"], c["record"]["id"]) for c in changes.items] == [("a", 1), ("b", 2)]


async def test_empty_publication_consumes_and_delivers_nothing(
    make_reader: MakeReader, pg: AsyncConnection[Any]
) -> None:
    await pg.execute("CREATE TABLE a (id int PRIMARY KEY); CREATE PUBLICATION empty_pub")
    reader, changes = await make_reader(publication="empty_pub")
    await pg.execute("INSERT INTO a VALUES (1)")
    cur = await pg.execute("SELECT pg_current_wal_insert_lsn()")
    row = await cur.fetchone()
    assert row is not None
    written = row[0]
    async with asyncio.timeout(DEADLINE):
        while True:  # the slot moves past the insert: consumed, not held back
            cur = await pg.execute(
                "SELECT confirmed_flush_lsn >= %s FROM pg_replication_slots WHERE slot_name = %s",
                (written, reader.slot_name),
            )
            row = await cur.fetchone()
            assert row is not None
            if row[0]:
                break
            await asyncio.sleep(0.02)
    assert changes.items == []


async def test_missing_publication_is_a_prerequisite_error(postgres_dsn: str) -> None:
    reader = WalReader(postgres_dsn, on_change=Changes(), publication="supabase_realtime")
    with pytest.raises(PrerequisiteError, match="CREATE PUBLICATION") as info:
        await reader.start()
    assert info.value.setting == "publication"
    assert not reader.running


def test_tables_and_publication_do_not_mix() -> None:
    with pytest.raises(ValueError, match="either"):
        WalReader("host=127.0.0.1", on_change=Changes(), tables=["a"], publication="p")


@pytest.mark.parametrize("name", ["Upper", "with-dash", "x" * 64, ""])
def test_slot_name_is_checked(name: str) -> None:
    with pytest.raises(ValueError, match="slot name"):
        WalReader("host=127.0.0.1", on_change=Changes(), slot_name=name or "é")


# --- slot lifecycle -----------------------------------------------------------------------


async def test_slot_exists_while_running_and_stop_drops_it(
    postgres_dsn: str, pg: AsyncConnection[Any]
) -> None:
    reader = WalReader(postgres_dsn, on_change=Changes())
    other = WalReader(postgres_dsn, on_change=Changes())
    assert reader.slot_name.startswith("supa_realtime_")
    assert reader.slot_name != other.slot_name
    await reader.start()
    try:
        slots = await _slots(pg)
        assert slots[reader.slot_name] == (reader.slot_name, "wal2json", "logical", False)
        assert reader.running
    finally:
        await reader.stop()
    assert reader.slot_name not in await _slots(pg)
    assert not reader.running
    await reader.stop()  # idempotent


async def test_context_manager_and_explicit_slot_name(
    postgres_dsn: str, pg: AsyncConnection[Any]
) -> None:
    async with WalReader(postgres_dsn, on_change=Changes(), slot_name="my_slot") as reader:
        assert "my_slot" in await _slots(pg)
        assert reader.slot_name == "my_slot"
    assert "my_slot" not in await _slots(pg)


async def test_reconnects_after_its_backend_is_terminated(
    make_reader: MakeReader, pg: AsyncConnection[Any]
) -> None:
    await pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    reader, changes = await make_reader()
    await pg.execute("INSERT INTO t VALUES (1)")
    await changes.wait_for(1)
    await pg.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'supa_realtime_wal' AND datname = current_database()"
    )
    await pg.execute("INSERT INTO t VALUES (2)")
    items = await changes.wait_for(2)
    assert [c["record"]["id"] for c in items] == [1, 2]
    assert reader.running


async def test_failing_handler_is_logged_and_delivery_goes_on(
    postgres_dsn: str, pg: AsyncConnection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    await pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    changes = Changes()

    async def handler(data: dict[str, Any]) -> None:
        if data["record"]["id"] == 1:
            raise RuntimeError("handler broke")
        await changes(data)

    async with WalReader(postgres_dsn, on_change=handler, poll_interval=0.02) as reader:
        await pg.execute("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)")
        items = await changes.wait_for(1)
        assert [c["record"]["id"] for c in items] == [2]
        assert reader.changes_delivered == 2
    failures = [r for r in caplog.records if "on_change failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None


async def test_start_and_stop_log_without_the_password(
    postgres_server: Any, postgres_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(postgres_dsn)["dbname"]
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE walker LOGIN REPLICATION PASSWORD 's3cret-pw'")
    try:
        dsn = postgres_server.dsn_for(str(dbname), user="walker") + " password=s3cret-pw"
        caplog.set_level(logging.INFO, logger="supa_realtime.devserver.wal")
        async with WalReader(dsn, on_change=Changes()) as reader:
            pass
        messages = [r.getMessage() for r in caplog.records]
        assert any("started" in m and reader.slot_name in m for m in messages)
        assert any("stopped" in m and reader.slot_name in m for m in messages)
        assert all("s3cret" not in m for m in messages)
        assert "user=walker" in redact_dsn(dsn)
        assert "s3cret" not in redact_dsn("postgresql://walker:s3cret-pw@127.0.0.1:5/db")
    finally:
        with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
            conn.execute("DROP ROLE walker")


async def test_survives_a_database_restart_and_stops_when_it_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running_postgres() as server:
        async with await AsyncConnection.connect(server.dsn, autocommit=True) as conn:
            await conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        changes = Changes()
        reader = WalReader(server.dsn, on_change=changes, poll_interval=0.02)
        await reader.start()
        try:
            restart = [
                "pg_ctl", "restart", "-D", str(server.data_dir), "-m", "fast", "-w",
                "-l", str(server.log_file),
            ]  # fmt: skip
            await asyncio.to_thread(server.run, *restart)
            async with await AsyncConnection.connect(server.dsn, autocommit=True) as conn:
                await conn.execute("INSERT INTO t VALUES (1)")  # maybe before it reconnects
            items = await changes.wait_for(1)
            assert [c["record"]["id"] for c in items] == [1]  # the kept slot had it

            await asyncio.to_thread(
                server.run, "pg_ctl", "stop", "-D", str(server.data_dir), "-m", "fast", "-w"
            )
            caplog.set_level(logging.INFO, logger="supa_realtime.devserver.wal")
        finally:
            await reader.stop()  # the database is gone: no exception, a warning instead
        assert not reader.running
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(
            f"could not drop slot {reader.slot_name}" in m and "pg_drop_replication_slot" in m
            for m in warnings
        )
        assert any("NOT dropped" in r.getMessage() for r in caplog.records)
