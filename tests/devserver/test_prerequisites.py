"""Missing prerequisites of logical decoding give errors that say what to do: real clusters
started with the wrong settings, a role without REPLICATION, a plugin that is not there."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from psycopg import AsyncConnection, sql

from supa_realtime.devserver.prerequisites import check_prerequisites, create_slot
from supa_realtime.devserver.wal import WalReader
from supa_realtime.exceptions import ConfigurationError, PrerequisiteError
from supa_realtime.testing.postgres import PostgresServer, running_postgres


async def _nothing(data: dict[str, Any]) -> None:
    raise AssertionError(f"no change expected, got {data}")


async def _slot_names(dsn: str) -> set[str]:
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT slot_name FROM pg_replication_slots")
        return {row[0] for row in await cur.fetchall()}


@pytest.fixture(scope="module")
def replica_cluster() -> Iterator[PostgresServer]:
    with running_postgres({"wal_level": "replica"}) as server:
        yield server


@pytest.fixture(scope="module")
def one_slot_cluster() -> Iterator[PostgresServer]:
    with running_postgres({"max_replication_slots": "1"}) as server:
        yield server


@pytest_asyncio.fixture
async def conn(postgres_dsn: str) -> AsyncIterator[AsyncConnection[Any]]:
    async with await AsyncConnection.connect(postgres_dsn, autocommit=True) as connection:
        yield connection


async def test_a_ready_database_passes(conn: AsyncConnection[Any]) -> None:
    await check_prerequisites(conn)


async def test_wal_level_replica(replica_cluster: PostgresServer) -> None:
    reader = WalReader(replica_cluster.dsn, on_change=_nothing)
    with pytest.raises(PrerequisiteError) as info:
        await reader.start()
    error = info.value
    assert isinstance(error, ConfigurationError)
    assert error.setting == "wal_level"
    message = str(error)
    assert "wal_level is 'replica'" in message
    assert "wal_level = logical in postgresql.conf" in message
    assert "restart" in message
    assert "rds.logical_replication" in message
    assert not reader.running
    assert await _slot_names(replica_cluster.dsn) == set()


async def test_wal_level_replica_when_creating_the_slot_directly(
    replica_cluster: PostgresServer,
) -> None:
    async with await AsyncConnection.connect(replica_cluster.dsn, autocommit=True) as c:
        with pytest.raises(PrerequisiteError, match="wal_level = logical") as info:
            await create_slot(c, "direct")
    assert info.value.setting == "wal_level"


async def test_role_without_replication(postgres_server: PostgresServer, postgres_dsn: str) -> None:
    dbname = str(psycopg.conninfo.conninfo_to_dict(postgres_dsn)["dbname"])
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute("CREATE ROLE plain_user LOGIN")
    try:
        dsn = postgres_server.dsn_for(dbname, user="plain_user")
        reader = WalReader(dsn, on_change=_nothing)
        with pytest.raises(PrerequisiteError) as info:
            await reader.start()
        assert info.value.setting == "REPLICATION"
        assert "role 'plain_user' lacks the REPLICATION privilege" in str(info.value)
        assert 'ALTER ROLE "plain_user" REPLICATION' in str(info.value)
        # Without the check, PostgreSQL's own refusal is translated the same way.
        async with await AsyncConnection.connect(dsn, autocommit=True) as c:
            with pytest.raises(PrerequisiteError, match="REPLICATION") as direct:
                await create_slot(c, "direct")
        assert direct.value.setting == "REPLICATION"
    finally:
        with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
            admin.execute("DROP ROLE plain_user")


async def test_replication_role_that_is_not_superuser_is_enough(
    postgres_server: PostgresServer, postgres_dsn: str
) -> None:
    dbname = str(psycopg.conninfo.conninfo_to_dict(postgres_dsn)["dbname"])
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute("CREATE ROLE replicator LOGIN REPLICATION")
    try:
        dsn = postgres_server.dsn_for(dbname, user="replicator")
        async with WalReader(dsn, on_change=_nothing) as reader:
            assert reader.slot_name in await _slot_names(postgres_dsn)
        assert reader.slot_name not in await _slot_names(postgres_dsn)
    finally:
        with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
            admin.execute("DROP ROLE replicator")


def _has_plugin_allow_list(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(
            "SELECT count(*) FROM pg_settings WHERE name = 'output_plugin_libraries'"
        ).fetchone()
    return row is not None and row[0] == 1


async def test_plugin_not_installed(postgres_server: PostgresServer, postgres_dsn: str) -> None:
    dbname = str(psycopg.conninfo.conninfo_to_dict(postgres_dsn)["dbname"])
    if _has_plugin_allow_list(postgres_dsn):
        # Allow the name, so that PostgreSQL goes on to look for the library file.
        with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL(
                    "ALTER DATABASE {} SET output_plugin_libraries = "
                    "pgoutput, test_decoding, wal2json, no_such_plugin"
                ).format(sql.Identifier(dbname))
            )
    reader = WalReader(postgres_dsn, on_change=_nothing, plugin="no_such_plugin")
    with pytest.raises(PrerequisiteError) as info:
        await reader.start()
    assert info.value.setting == "no_such_plugin"
    message = str(info.value)
    assert "output plugin 'no_such_plugin' is not installed" in message
    assert "apt-get install postgresql-15-no_such_plugin" in message
    assert reader.slot_name not in await _slot_names(postgres_dsn)


async def test_plugin_not_in_output_plugin_libraries(postgres_dsn: str) -> None:
    if not _has_plugin_allow_list(postgres_dsn):
        pytest.skip("this PostgreSQL build has no output_plugin_libraries setting")
    reader = WalReader(postgres_dsn, on_change=_nothing, plugin="no_such_plugin")
    with pytest.raises(PrerequisiteError) as info:
        await reader.start()
    assert info.value.setting == "output_plugin_libraries"
    assert (
        "set output_plugin_libraries = 'pgoutput, test_decoding, wal2json, no_such_plugin'"
        in str(info.value)
    )
    assert "pg_reload_conf()" in str(info.value)


async def test_every_slot_taken(one_slot_cluster: PostgresServer) -> None:
    with psycopg.connect(one_slot_cluster.dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_create_logical_replication_slot('someone_elses', 'wal2json')")
    try:
        reader = WalReader(one_slot_cluster.dsn, on_change=_nothing)
        with pytest.raises(PrerequisiteError) as info:
            await reader.start()
        assert info.value.setting == "max_replication_slots"
        message = str(info.value)
        assert "max_replication_slots = 1" in message
        assert "raise max_replication_slots in postgresql.conf" in message
        assert "someone_elses (wal2json, database postgres, inactive)" in message
        assert "pg_drop_replication_slot" in message
        # Taken between the check and the creation: PostgreSQL's refusal says the same.
        async with await AsyncConnection.connect(one_slot_cluster.dsn, autocommit=True) as c:
            with pytest.raises(PrerequisiteError, match="someone_elses") as direct:
                await create_slot(c, "late")
        assert direct.value.setting == "max_replication_slots"
        assert await _slot_names(one_slot_cluster.dsn) == {"someone_elses"}
    finally:
        with psycopg.connect(one_slot_cluster.dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_drop_replication_slot('someone_elses')")


async def test_slot_name_in_use(postgres_dsn: str) -> None:
    async with WalReader(postgres_dsn, on_change=_nothing, slot_name="taken"):
        second = WalReader(postgres_dsn, on_change=_nothing, slot_name="taken")
        with pytest.raises(PrerequisiteError, match="'taken' already exists") as info:
            await second.start()
        assert info.value.setting == "slot_name"
        assert not second.running
        assert "taken" in await _slot_names(postgres_dsn)  # the first reader's slot is intact
