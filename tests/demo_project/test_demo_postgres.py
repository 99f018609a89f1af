"""``python -m demo_project.postgres``: where the cluster lives, and the ``demo`` database."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from demo_project.postgres import DATABASE, cluster_folder, prepare_database
from supa_realtime.devserver.local_postgres import PostgresServer


def test_folder_kept_when_others_can_reach_it(tmp_path: Path) -> None:
    open_parent = Path("/tmp")  # mode 1777
    assert cluster_folder(open_parent / "x" / "pg") == open_parent / "x" / "pg"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to another user")
def test_folder_moved_when_root_and_a_parent_is_closed(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    moved = cluster_folder(closed / "pg")
    assert moved.parent == Path("/var/tmp")
    assert moved.name.startswith("supa_realtime-demo-")
    assert cluster_folder(closed / "pg") == moved  # the same folder every run
    assert cluster_folder(closed / "other") != moved


def test_prepare_database_creates_it_and_drops_unused_slots(
    postgres_server: PostgresServer,
) -> None:
    try:
        url = prepare_database(postgres_server)
        assert url == f"postgres://postgres@127.0.0.1:{postgres_server.port}/{DATABASE}"
        dsn = postgres_server.dsn_for(DATABASE)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_create_logical_replication_slot('supa_realtime_left_over', 'wal2json')"
            )
            conn.execute(
                "SELECT pg_create_logical_replication_slot('someone_elses', 'test_decoding')"
            )
        assert prepare_database(postgres_server) == url  # a second run reuses the database
        with psycopg.connect(dsn, autocommit=True) as conn:
            slots = conn.execute("SELECT slot_name FROM pg_replication_slots ORDER BY 1")
            assert [name for (name,) in slots.fetchall()] == ["someone_elses"]
    finally:
        postgres_server.drop_database(DATABASE)
