"""The throwaway PostgreSQL fixtures, against the clusters they start."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg
import pytest

from supa_realtime.testing.postgres import PostgresServer, find_bindir, running_postgres


def _show(dsn: str, setting: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SHOW {setting}").fetchone()
    assert row is not None
    return str(row[0])


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_session_cluster_settings(postgres_server: PostgresServer) -> None:
    assert postgres_server.host == "127.0.0.1"
    assert postgres_server.user == "postgres"
    assert _accepts(postgres_server.port)
    dsn = postgres_server.dsn
    assert _show(dsn, "wal_level") == "logical"
    assert _show(dsn, "max_replication_slots") == "10"
    assert _show(dsn, "listen_addresses") == "127.0.0.1"
    assert _show(dsn, "fsync") == "off"
    assert _show(dsn, "port") == str(postgres_server.port)
    assert _show(dsn, "unix_socket_directories") == str(postgres_server.base_dir)
    assert (postgres_server.base_dir / f".s.PGSQL.{postgres_server.port}").is_socket()


def test_server_runs_unprivileged(postgres_server: PostgresServer) -> None:
    pid = int((postgres_server.data_dir / "postmaster.pid").read_text().split()[0])
    status = Path(f"/proc/{pid}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert uid != 0
    if os.geteuid() == 0:
        assert postgres_server.os_user is not None
    else:
        assert uid == os.geteuid()


def test_logical_decoding_with_wal2json_works(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("SELECT pg_create_logical_replication_slot('probe', 'wal2json')")
        conn.execute("INSERT INTO t VALUES (1)")
        rows = conn.execute(
            "SELECT data FROM pg_logical_slot_get_changes('probe', NULL, NULL, "
            "'format-version', '2', 'include-transaction', 'false')"
        ).fetchall()
        conn.execute("SELECT pg_drop_replication_slot('probe')")
    assert len(rows) == 1
    assert '"action":"I"' in rows[0][0]


def test_postgres_dsn_is_a_fresh_database(
    postgres_server: PostgresServer, postgres_dsn: str
) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(postgres_dsn)["dbname"]
    assert dbname not in ("postgres", "template1")
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
            "'information_schema')"
        ).fetchone()
    assert row == (0,)


def test_create_and_drop_database_with_a_leftover_slot(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database("leftovers")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('left_behind', 'wal2json')")
    postgres_server.drop_database("leftovers")
    with psycopg.connect(postgres_server.dsn) as conn:
        dbs = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'leftovers'").fetchall()
        slots = conn.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'left_behind'"
        ).fetchall()
    assert dbs == []
    assert slots == []


def test_running_postgres_applies_settings_and_cleans_up() -> None:
    with running_postgres({"max_replication_slots": "3"}) as server:
        assert _show(server.dsn, "max_replication_slots") == "3"
        assert _show(server.dsn, "wal_level") == "logical"
        port, base_dir = server.port, server.base_dir
        assert base_dir.is_dir()
    assert not base_dir.exists()
    assert not _accepts(port)
    server.stop()  # idempotent


def test_find_bindir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found = find_bindir()
    assert (found / "initdb").is_file()
    assert (found / "pg_ctl").is_file()
    monkeypatch.setenv("SUPA_REALTIME_PG_BINDIR", str(found))
    assert find_bindir() == found
    monkeypatch.setenv("SUPA_REALTIME_PG_BINDIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="does not contain initdb"):
        find_bindir()
