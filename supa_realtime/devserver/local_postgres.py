"""A local PostgreSQL cluster for the local Realtime server, its demo, tests and benchmarks.

:func:`start_postgres` makes a cluster with ``initdb`` and starts it with ``pg_ctl`` on a free
loopback port, with ``wal_level=logical`` so that logical decoding (and so the WAL reader)
works. Authentication is ``trust``; only 127.0.0.1 and a unix socket inside the cluster's
folder listen. Without ``base_dir`` the cluster lives in a fresh temporary folder, runs with
``fsync=off`` for speed and is deleted by :meth:`PostgresServer.stop`; with ``base_dir`` (the
demo's local folder) it is created there on first use, reused afterwards, durable, and kept.

Finding the binaries: the ``SUPA_REALTIME_PG_BINDIR`` environment variable when set, else
``pg_config --bindir`` when that folder holds ``initdb`` (not the case for Debian's
``/usr/bin/pg_config``, whose bindir holds only wrappers), else the newest
``/usr/lib/postgresql/<major>/bin`` (Debian and Ubuntu packages).

Plugins: PostgreSQL builds that have the ``output_plugin_libraries`` setting (it lists the
output plugins REPLICATION roles may use; 15.20 has it) get ``wal2json`` added to it.

Running as root: ``initdb`` and ``postgres`` refuse to run as root, so when the current user is
root every command runs as an unprivileged user (``nobody`` unless ``SUPA_REALTIME_PG_OS_USER``
names another) through ``runuser``, and the cluster's folder is handed to that user (its
parent folders must let that user through).

This module does not import pytest; the fixtures are in :mod:`supa_realtime.testing.postgres`.
"""

from __future__ import annotations

import contextlib
import glob
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
from psycopg import sql

__all__ = [
    "DEFAULT_SETTINGS",
    "PostgresServer",
    "find_bindir",
    "running_postgres",
    "start_postgres",
]

DEFAULT_SETTINGS: Mapping[str, str] = {
    "wal_level": "logical",
    "max_replication_slots": "10",
    "max_wal_senders": "10",
    "shared_buffers": "32MB",
    "max_connections": "50",
    "TimeZone": "UTC",
}
"""Settings of every cluster; ``start_postgres(settings=...)`` overrides them one by one."""

EPHEMERAL_SETTINGS: Mapping[str, str] = {"fsync": "off", "full_page_writes": "off"}
"""Added for clusters in a temporary folder, which nobody needs after a crash."""

SUPERUSER = "postgres"
START_TIMEOUT = 60.0


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
    """A running cluster.

    Attributes:
        host: always ``127.0.0.1``.
        port: the TCP port it listens on.
        user: the superuser role (``postgres``); authentication is ``trust``.
        dbname: the default database (``postgres``).
        base_dir: the folder holding the data folder, socket and log.
        bindir: the folder of the server binaries used.
        ephemeral: whether :meth:`stop` deletes :attr:`base_dir` (a temporary folder).
    """

    host: str
    port: int
    user: str
    base_dir: Path
    bindir: Path
    dbname: str = "postgres"
    os_user: str | None = None
    ephemeral: bool = True
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
        """Stop the server (``pg_ctl stop -m fast``); delete its folder if ephemeral.

        Idempotent.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self.run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")
        finally:
            if self.ephemeral:
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


def _make_base_dir(os_user: str | None, base_dir: Path | None) -> Path:
    if base_dir is None:
        base = Path(tempfile.mkdtemp(prefix="supa_realtime_pg_"))
    else:
        base = base_dir
        base.mkdir(parents=True, exist_ok=True)
    if os_user is not None:
        entry = pwd.getpwnam(os_user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
        probe = _run(["test", "-w", str(base)], os_user, check=False)
        if probe.returncode != 0:
            if base_dir is None:
                shutil.rmtree(base, ignore_errors=True)
            raise RuntimeError(
                f"user {os_user!r} cannot write to {base}: a parent folder is not traversable; "
                "use a folder under a world-traversable one such as /tmp (for temporary "
                "clusters: point TMPDIR there)"
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
    settings: Mapping[str, str] | None = None,
    *,
    base_dir: Path | str | None = None,
    port: int | None = None,
    timeout: float = START_TIMEOUT,
) -> PostgresServer:
    """Initialise (when needed) and start a cluster; the caller must
    :meth:`PostgresServer.stop` it.

    Args:
        settings: ``postgresql.conf`` settings overriding :data:`DEFAULT_SETTINGS`.
        base_dir: a folder to keep the cluster in, created and initialised on first use and
            reused afterwards; by default a temporary folder deleted on stop.
        port: the TCP port; by default a free one.
        timeout: seconds allowed for ``initdb`` plus start-up.

    Returns:
        The running server.

    Raises:
        RuntimeError: the binaries are missing, ``base_dir`` is unusable or already served by
            a running PostgreSQL, or the server did not start in time (with its log's end).
    """
    deadline = time.monotonic() + timeout
    bindir = find_bindir()
    os_user = _os_user()
    wanted_dir = None if base_dir is None else Path(base_dir).resolve()
    base = _make_base_dir(os_user, wanted_dir)
    server = PostgresServer(
        host="127.0.0.1",
        port=0,
        user=SUPERUSER,
        base_dir=base,
        bindir=bindir,
        os_user=os_user,
        ephemeral=wanted_dir is None,
    )
    if (
        not server.ephemeral
        and server.run("pg_ctl", "status", "-D", str(server.data_dir), check=False).returncode == 0
    ):
        server._stopped = True  # not ours to stop
        raise RuntimeError(
            f"a PostgreSQL server already runs on {server.data_dir}; stop it with "
            f"pg_ctl stop -D {server.data_dir} or use another folder"
        )
    try:
        if not (server.data_dir / "PG_VERSION").exists():
            server.run(
                "initdb",
                "-D",
                str(server.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                *(["--no-sync"] if server.ephemeral else []),
            )
        conf = dict(DEFAULT_SETTINGS)
        if server.ephemeral:
            conf.update(EPHEMERAL_SETTINGS)
        if _knows_setting(bindir, "output_plugin_libraries"):
            conf["output_plugin_libraries"] = "pgoutput, test_decoding, wal2json"
        conf.update(settings or {})
        conf["listen_addresses"] = "'127.0.0.1'"
        conf["unix_socket_directories"] = f"'{base}'"
        attempts = 3 if port is None else 1
        for attempt in range(attempts):
            server.port = port if port is not None else _free_port()
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
            if "could not bind" not in log or attempt == attempts - 1:
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
    settings: Mapping[str, str] | None = None,
    *,
    base_dir: Path | str | None = None,
    port: int | None = None,
    timeout: float = START_TIMEOUT,
) -> Iterator[PostgresServer]:
    """Context manager form of :func:`start_postgres`: the cluster is stopped on exit."""
    server = start_postgres(settings, base_dir=base_dir, port=port, timeout=timeout)
    try:
        yield server
    finally:
        server.stop()
