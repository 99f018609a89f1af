"""``manage.py realtime_devserver``: a local Supabase Realtime server until stopped."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from supa_realtime.devserver import LOCAL_DEV_JWT_SECRET, DevServer
from supa_realtime.devserver.runner import run_until_signalled
from supa_realtime.devserver.wal import WalReader
from supa_realtime.exceptions import PrerequisiteError

DEFAULT_PORT = 54321
"""The port of the Supabase CLI's local gateway, so ``SUPABASE_URL=http://127.0.0.1:54321``
works the same with this server and with ``supabase start``."""

_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


class Command(BaseCommand):
    help = (
        "Run a local Supabase Realtime server (websocket at /realtime/v1/websocket, REST at "
        "/realtime/v1/api/broadcast) and print its URL and local API keys. Stops on SIGINT or "
        "SIGTERM. For local development only: the default JWT secret is public."
    )
    server_class: type[DevServer] = DevServer
    # It needs no settings of its own, so a project without SUPA_REALTIME can run it.
    requires_system_checks: list[str] = []
    _reading_wal = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address (default 127.0.0.1).")
        parser.add_argument(
            "--port",
            type=int,
            default=DEFAULT_PORT,
            help=f"Port (default {DEFAULT_PORT}, like the Supabase CLI; 0 picks a free one).",
        )
        parser.add_argument(
            "--jwt-secret",
            default=None,
            help="HMAC secret of the tokens (default: $SUPABASE_JWT_SECRET, else the "
            "Supabase CLI's public local development secret).",
        )
        parser.add_argument(
            "--database-url",
            default=None,
            help="Read database changes from this PostgreSQL database's WAL (wal2json, "
            "wal_level=logical) and deliver them as postgres_changes. Without it, changes "
            "only come from DevServer.emit_change().",
        )
        parser.add_argument(
            "--publication",
            default=None,
            help="With --database-url: read only the tables of this publication, as Supabase "
            "reads supabase_realtime (default: every table).",
        )
        parser.add_argument(
            "--realtime-delays",
            action="store_true",
            help="Answer refused handshakes after 2 s and join errors after 5 s, as Realtime does.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        _configure_logging(_LEVELS.get(options["verbosity"], logging.INFO))
        secret = (
            options["jwt_secret"] or os.environ.get("SUPABASE_JWT_SECRET") or (LOCAL_DEV_JWT_SECRET)
        )
        delays = options["realtime_delays"]
        server = self.server_class(
            options["host"],
            options["port"],
            secret,
            connect_error_delay=2.0 if delays else 0.0,
            join_error_delay=5.0 if delays else 0.0,
        )
        companions = []
        self._reading_wal = bool(options["database_url"])
        if options["database_url"]:
            companions.append(
                WalReader(
                    options["database_url"],
                    on_change=server.emit_change,
                    publication=options["publication"],
                )
            )
        try:
            asyncio.run(run_until_signalled(server, self._announce, companions))
        except (PrerequisiteError, OSError) as exc:
            raise CommandError(str(exc)) from None

    def _announce(self, server: DevServer) -> None:
        # Local development keys, printed on purpose for the developer to copy.
        self.stdout.write(f"Realtime dev server listening on {server.http_url}")
        self.stdout.write(f"SUPABASE_URL={server.http_url}")
        self.stdout.write(f"REALTIME_URL={server.ws_url}")
        self.stdout.write(f"SUPABASE_ANON_KEY={server.anon_key}")
        self.stdout.write(f"SUPABASE_SERVICE_ROLE_KEY={server.service_role_key}")
        if self._reading_wal:
            self.stdout.write("Reading database changes from the WAL.")
        self.stdout.write("Press Ctrl+C to stop.")
        self.stdout.flush()


def _configure_logging(level: int) -> None:
    """Send supa_realtime's log lines to stderr unless the project configured logging."""
    package_logger = logging.getLogger("supa_realtime")
    if package_logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_logger.addHandler(handler)
    package_logger.setLevel(level)
