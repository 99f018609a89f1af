"""The demo's own PostgreSQL: ``python -m demo_project.postgres FOLDER``.

Initialises a cluster in ``FOLDER`` on first use (``wal_level=logical``, wal2json allowed, trust
authentication on 127.0.0.1 only; see :mod:`supa_realtime.devserver.local_postgres`), starts it
on a free port, makes sure the ``demo`` database exists, prints ``DATABASE_URL=postgres://…``
on stdout, and runs until SIGTERM, when it stops the cluster (the data stays in ``FOLDER``).
SIGINT is ignored: ``./dev demo`` stops the database after the processes that use it.

When running as root the cluster runs as an unprivileged user, who must be able to reach
``FOLDER``; if a parent folder is closed to other users (``/root``, pytest's temporary folders)
the cluster lives in ``/var/tmp/supa_realtime-demo-<hash>`` instead, and a line says so.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from supa_realtime.devserver.local_postgres import (
    PostgresServer,
    find_bindir,
    start_postgres,
)

logger = logging.getLogger(__name__)

DATABASE = "demo"
FALLBACK_PARENT = Path("/var/tmp")
LIVENESS_INTERVAL = 1.0


def _reachable_by_others(folder: Path) -> bool:
    """Whether every existing parent of ``folder`` lets other users through."""
    for parent in folder.resolve().parents:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            return False
    return True


def cluster_folder(wanted: Path) -> Path:
    """``wanted``, or a folder under ``/var/tmp`` when root's unprivileged user cannot reach it."""
    if os.geteuid() != 0 or _reachable_by_others(wanted):
        return wanted
    digest = hashlib.sha256(str(wanted.resolve()).encode()).hexdigest()[:12]
    return FALLBACK_PARENT / f"supa_realtime-demo-{digest}"


def _stop_leftover(folder: Path) -> None:
    """Stop a cluster left running in ``folder`` by a demo that was killed."""
    if not (folder / "data" / "postmaster.pid").exists():
        return
    os_user = None if os.geteuid() != 0 else os.environ.get("SUPA_REALTIME_PG_OS_USER", "nobody")
    leftover = PostgresServer(
        host="127.0.0.1",
        port=0,
        user="postgres",
        base_dir=folder,
        bindir=find_bindir(),
        os_user=os_user,
        ephemeral=False,
    )
    if leftover.run("pg_ctl", "status", "-D", str(leftover.data_dir), check=False).returncode == 0:
        print(f"stopping the PostgreSQL a previous demo left running in {folder}", file=sys.stderr)
        leftover.stop()


def prepare_database(server: PostgresServer) -> str:
    """Create the ``demo`` database when missing and drop replication slots nobody uses
    (left by a local Realtime server that was killed); return its URL."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        stale = conn.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE database = %s AND NOT active "
            "AND slot_name LIKE 'supa\\_realtime\\_%%'",
            (DATABASE,),
        ).fetchall()
        for (slot_name,) in stale:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot_name,))
            print(f"dropped the unused replication slot {slot_name}", file=sys.stderr)
    return f"postgres://{server.user}@{server.host}:{server.port}/{DATABASE}"


def _alive(server: PostgresServer) -> bool:
    pid_file = server.data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folder", type=Path, help="Where the cluster lives (kept between runs).")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    folder = cluster_folder(args.folder)
    if folder != args.folder:
        print(
            f"the cluster lives in {folder}: PostgreSQL runs as an unprivileged user, who "
            f"cannot reach {args.folder}",
            file=sys.stderr,
        )
    try:
        _stop_leftover(folder)
        server = start_postgres(base_dir=folder)
    except RuntimeError as exc:
        print(f"PostgreSQL did not start: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"DATABASE_URL={prepare_database(server)}", flush=True)
        while signal.sigtimedwait({signal.SIGTERM}, LIVENESS_INTERVAL) is None:
            if not _alive(server):
                log = server.log_file.read_text(errors="replace")[-2000:]
                print(f"PostgreSQL exited on its own; the end of its log:\n{log}", file=sys.stderr)
                return 1
        return 0
    finally:
        try:
            server.stop()
        except RuntimeError as exc:
            print(f"PostgreSQL did not stop cleanly: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
