"""Throwaway PostgreSQL clusters for tests and benchmarks, and the pytest fixtures over them.

A cluster is made with ``initdb`` in a fresh temporary folder and started with ``pg_ctl`` on a
free loopback port, with ``wal_level=logical`` so that logical decoding (and so the local
server's WAL reader) works. Authentication is ``trust``; only 127.0.0.1 and a unix socket inside
the temporary folder listen.

Finding the binaries: the ``SUPA_REALTIME_PG_BINDIR`` environment variable when set, else
``pg_config --bindir`` when that folder holds ``initdb`` (not the case for Debian's
``/usr/bin/pg_config``, whose bindir holds only wrappers), else the newest
``/usr/lib/postgresql/<major>/bin`` (Debian and Ubuntu packages).

Plugins: PostgreSQL builds that have the ``output_plugin_libraries`` setting (it lists the
output plugins REPLICATION roles may use; 15.20 has it) get ``wal2json`` added to it.

Running as root: ``initdb`` and ``postgres`` refuse to run as root, so when the current user is
root every command runs as an unprivileged user (``nobody`` unless ``SUPA_REALTIME_PG_OS_USER``
names another) through ``runuser``, and the temporary folder is handed to that user.

Fixtures (register them with ``from supa_realtime.testing.postgres import postgres_server,
postgres_dsn``):

* ``postgres_server`` (session): a :class:`PostgresServer`.
* ``postgres_dsn`` (function): the DSN of a fresh database, dropped after the test together
  with any replication slot left in it.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

__all__ = [
    "PostgresServer",
    "find_bindir",
    "postgres_dsn",
    "postgres_server",
    "running_postgres",
]

DEFAULT_SETTINGS: Mapping[str, str] = {
    "wal_level": "logical",
    "max_replication_slots": "10",
    "max_wal_senders": "10",
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "50",
    "TimeZone": "UTC",
}
"""Settings of every cluster; ``running_postgres(settings=...)`` overrides them one by one."""

SUPERUSER = "postgres"
START_TIMEOUT = 60.0
_database_names = itertools.count(1)


def find_bindir() -> Path:
    """Return the folder holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Raises:
        RuntimeError: no PostgreSQL server binaries were found; the message says where we looked.
    """
    env = os.environ.get("SUPA_REALTIME_PG_BINDIR")
    if env:
        path = Path(env)
        if (path / "initdb").is_file():
            return path
        raise RuntimeError(f"SUPA_REALTIME_PG_BINDIR={env} does not contain initdb")
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if out and (Path(out) / "initdb").is_file():
            return Path(out)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if candidates:
        return Path(candidates[-1]).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: set SUPA_REALTIME_PG_BINDIR to the folder holding "
        "initdb, or install them (Debian: apt-get install postgresql-15 postgresql-15-wal2json)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _os_user() -> str | None:
    """The unprivileged user to run PostgreSQL as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    return os.environ.get("SUPA_REALTIME_PG_OS_USER", "nobody")


@dataclass
class PostgresServer:
    """A running throwaway cluster.

    Attributes:
        host: always ``127.0.0.1``.
        port: the TCP port it listens on.
        user: the superuser role (``postgres``); authentication is ``trust``.
        dbname: the default database (``postgres``).
        base_dir: the temporary folder holding the data folder, socket and log.
        bindir: the folder of the server binaries used.
    """

    host: str
    port: int
    user: str
    base_dir: Path
    bindir: Path
    dbname: str = "postgres"
    os_user: str | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        """The cluster's data folder."""
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        """The server log."""
        return self.base_dir / "postgres.log"

    @property
    def dsn(self) -> str:
        """A libpq connection string for the default database."""
        return self.dsn_for(self.dbname)

    def dsn_for(self, dbname: str, user: str | None = None) -> str:
        """Return a libpq connection string for ``dbname`` (as ``user``, default superuser)."""
        return psycopg.conninfo.make_conninfo(
            host=self.host, port=self.port, user=user or self.user, dbname=dbname
        )

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its DSN."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, first dropping the replication slots left in it."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            slots = conn.execute(
                "SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = %s",
                (name,),
            ).fetchall()
            for slot_name, active_pid in slots:
                if active_pid is not None:
                    conn.execute("SELECT pg_terminate_backend(%s)", (active_pid,))
                _drop_slot_when_free(conn, slot_name)
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL binary from :attr:`bindir` as the cluster's OS user."""
        return _run([str(self.bindir / args[0]), *args[1:]], self.os_user, check=check)

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``) and delete its folder. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self.run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _drop_slot_when_free(conn: psycopg.Connection[tuple[object, ...]], slot_name: str) -> None:
    deadline = time.monotonic() + 10.0
    while True:
        try:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot_name,))
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        except psycopg.errors.UndefinedObject:
            return


def _run(
    cmd: list[str], os_user: str | None, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    if os_user is not None:
        cmd = ["runuser", "-u", os_user, "--", *cmd]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"}
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed with exit code {proc.returncode}:\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return proc


def _make_base_dir(os_user: str | None) -> Path:
    base = Path(tempfile.mkdtemp(prefix="supa_realtime_pg_"))
    if os_user is not None:
        entry = pwd.getpwnam(os_user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
        probe = _run(["test", "-w", str(base)], os_user, check=False)
        if probe.returncode != 0:
            shutil.rmtree(base, ignore_errors=True)
            raise RuntimeError(
                f"user {os_user!r} cannot write to {base}: a parent folder is not traversable; "
                "point TMPDIR at a world-traversable folder such as /tmp"
            )
    return base


def _wait_until_ready(server: PostgresServer, deadline: float) -> None:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(server.dsn, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.05)
    raise RuntimeError(f"PostgreSQL on port {server.port} did not accept connections: {last}")


def start_postgres(
    settings: Mapping[str, str] | None = None, *, timeout: float = START_TIMEOUT
) -> PostgresServer:
    """Initialise and start a throwaway cluster; the caller must :meth:`PostgresServer.stop` it.

    Args:
        settings: ``postgresql.conf`` settings overriding :data:`DEFAULT_SETTINGS`.
        timeout: seconds allowed for ``initdb`` plus start-up.

    Returns:
        The running server.
    """
    deadline = time.monotonic() + timeout
    bindir = find_bindir()
    os_user = _os_user()
    base = _make_base_dir(os_user)
    server = PostgresServer(
        host="127.0.0.1", port=0, user=SUPERUSER, base_dir=base, bindir=bindir, os_user=os_user
    )
    try:
        server.run(
            "initdb",
            "-D",
            str(server.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        conf = dict(DEFAULT_SETTINGS)
        if _knows_setting(bindir, "output_plugin_libraries"):
            conf["output_plugin_libraries"] = "pgoutput, test_decoding, wal2json"
        conf.update(settings or {})
        conf["listen_addresses"] = "'127.0.0.1'"
        conf["unix_socket_directories"] = f"'{base}'"
        for attempt in range(3):
            server.port = _free_port()
            lines = [f"{key} = {_conf_value(value)}" for key, value in conf.items()]
            lines.append(f"port = {server.port}")
            auto_conf = server.data_dir / "postgresql.auto.conf"
            auto_conf.write_text("\n".join(lines) + "\n")
            if os_user is not None:
                entry = pwd.getpwnam(os_user)
                os.chown(auto_conf, entry.pw_uid, entry.pw_gid)
            remaining = max(1, int(deadline - time.monotonic()))
            proc = server.run(
                "pg_ctl",
                "start",
                "-D",
                str(server.data_dir),
                "-l",
                str(server.log_file),
                "-w",
                "-t",
                str(remaining),
                check=False,
            )
            if proc.returncode == 0:
                break
            log = server.log_file.read_text(errors="replace") if server.log_file.exists() else ""
            if "could not bind" not in log or attempt == 2:
                raise RuntimeError(
                    f"pg_ctl start failed ({proc.returncode}): {proc.stderr[-1000:]}\n{log[-2000:]}"
                )
        _wait_until_ready(server, deadline)
    except BaseException:
        server.stop()
        raise
    return server


def _knows_setting(bindir: Path, name: str) -> bool:
    """Whether this server build has setting ``name`` (newer minor releases add some)."""
    out = subprocess.run(
        [str(bindir / "postgres"), "--describe-config"], capture_output=True, text=True, check=False
    ).stdout
    return any(line.split("\t", 1)[0] == name for line in out.splitlines())


def _conf_value(value: str) -> str:
    if value.startswith("'") or value.replace(".", "").isalnum():
        return value
    return "'" + value.replace("'", "''") + "'"


@contextlib.contextmanager
def running_postgres(
    settings: Mapping[str, str] | None = None, *, timeout: float = START_TIMEOUT
) -> Iterator[PostgresServer]:
    """Context manager form of :func:`start_postgres`: the cluster is stopped on exit."""
    server = start_postgres(settings, timeout=timeout)
    try:
        yield server
    finally:
        server.stop()


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
