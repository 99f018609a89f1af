"""Pytest fixtures over throwaway PostgreSQL clusters
(:mod:`supa_realtime.devserver.local_postgres`).

* ``postgres_server`` (session): a :class:`PostgresServer` in a temporary folder, with
  ``wal_level=logical``, ``max_replication_slots=10``, listening on 127.0.0.1 at a free port
  and on a unix socket inside its folder, ``fsync=off``; stopped with ``pg_ctl stop -m fast``
  at the end of the session. ``initdb`` comes from ``SUPA_REALTIME_PG_BINDIR``, ``pg_config
  --bindir`` or ``/usr/lib/postgresql/<major>/bin``; as root, everything runs as ``nobody``.
* ``postgres_dsn`` (function): the DSN of a fresh database in it, dropped after the test
  together with any replication slot left in it.

Register them with ``from supa_realtime.testing.postgres import postgres_server,
postgres_dsn`` in a conftest (or through ``supa_realtime.testing``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from ..devserver.local_postgres import (
    DEFAULT_SETTINGS,
    PostgresServer,
    find_bindir,
    running_postgres,
    start_postgres,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "PostgresServer",
    "find_bindir",
    "postgres_dsn",
    "postgres_server",
    "running_postgres",
    "start_postgres",
]

_database_names = itertools.count(1)
_shared: list[PostgresServer] = []
_shared_users = 0


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway cluster (``wal_level=logical``) shared by the whole test session.

    Test modules that import this fixture themselves still share the one cluster: it is
    started by the first user and stopped when the last one is torn down.
    """
    global _shared_users
    if not _shared:
        _shared.append(start_postgres())
    _shared_users += 1
    try:
        yield _shared[0]
    finally:
        _shared_users -= 1
        if _shared_users == 0:
            _shared.pop().stop()


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """The DSN of a fresh database in :func:`postgres_server`, dropped after the test."""
    name = f"test_{os.getpid()}_{next(_database_names)}"
    dsn = postgres_server.create_database(name)
    try:
        yield dsn
    finally:
        postgres_server.drop_database(name)
