"""A cluster kept in a given folder (the demo's local database): created once, reused, kept."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from supa_realtime.devserver.local_postgres import running_postgres, start_postgres


@pytest.fixture
def folder() -> Iterator[Path]:
    # Under /tmp rather than tmp_path: as root the server runs as nobody, who must get through.
    parent = Path(tempfile.mkdtemp(prefix="supa_realtime_local_"))
    parent.chmod(0o755)
    try:
        yield parent / "pgdata"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_folder_is_initialised_once_reused_and_kept(folder: Path) -> None:
    with running_postgres(base_dir=folder) as server:
        assert not server.ephemeral
        assert server.base_dir == folder.resolve()
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id int PRIMARY KEY)")
            conn.execute("INSERT INTO kept VALUES (7)")
            settings: dict[str, str] = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN "
                    "('wal_level', 'fsync', 'listen_addresses')"
                ).fetchall()
            )
        # A second server on a folder in use is refused; the first one is untouched.
        with pytest.raises(RuntimeError, match="already runs on"):
            start_postgres(base_dir=folder)
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert settings == {"wal_level": "logical", "fsync": "on", "listen_addresses": "127.0.0.1"}
    assert (folder / "data" / "PG_VERSION").is_file()
    assert not (folder / "data" / "postmaster.pid").exists()

    with running_postgres(base_dir=folder) as again, psycopg.connect(again.dsn) as conn:
        assert conn.execute("SELECT id FROM kept").fetchall() == [(7,)]
    assert folder.is_dir()
