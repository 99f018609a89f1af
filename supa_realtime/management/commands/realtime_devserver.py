"""``manage.py realtime_devserver``: a local Supabase Realtime server until stopped.

Defaults come from ``SUPA_REALTIME["DEVSERVER"]``; command-line options win. Database changes
are read from the first of: ``--database-url``, ``DEVSERVER["DATABASE_URL"]``, the Django
``default`` database when it is PostgreSQL; ``--no-database`` turns that off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from supa_realtime.devserver import LOCAL_DEV_JWT_SECRET, DevServer
from supa_realtime.devserver.database import dsn_from_django
from supa_realtime.devserver.runner import run_until_signalled
from supa_realtime.devserver.wal import WalReader, redact_dsn
from supa_realtime.exceptions import ConfigurationError, PrerequisiteError
from supa_realtime.management.logs import configure_logging

DEFAULT_PORT = 54321
"""The port of the Supabase CLI's local gateway, so ``SUPABASE_URL=http://127.0.0.1:54321``
works the same with this server and with ``supabase start``."""


@dataclass(frozen=True)
class ServerOptions:
    """What the command runs with, once options, settings and defaults are merged."""

    host: str
    port: int
    jwt_secret: str
    database_url: str | None
    database_source: str
    publication: str | None
    tables: tuple[str, ...] | None

    def __repr__(self) -> str:
        return (
            f"ServerOptions(host={self.host!r}, port={self.port}, "
            f"database={self.database_source!r}, publication={self.publication!r}, "
            f"tables={self.tables!r})"
        )


def resolve_options(
    options: Mapping[str, Any], databases: Mapping[str, Mapping[str, Any]] | None = None
) -> ServerOptions:
    """Merge the command's ``options`` over ``SUPA_REALTIME["DEVSERVER"]`` and the defaults.

    Args:
        options: the parsed command-line options (absent or None: not given).
        databases: Django's ``DATABASES`` (default: ``django.db.connections.databases``).

    Raises:
        ConfigurationError: a malformed setting, or both tables and a publication.
    """
    from supa_realtime.conf import settings as realtime_settings

    if databases is None:
        from django.db import connections

        databases = connections.databases
    conf = realtime_settings.DEVSERVER
    database_url: str | None = None
    source = "none"
    if options.get("no_database"):
        source = "none (--no-database)"
    elif options.get("database_url"):
        database_url, source = options["database_url"], "--database-url"
    elif conf.database_url:
        database_url, source = conf.database_url, 'SUPA_REALTIME["DEVSERVER"]["DATABASE_URL"]'
    elif "default" in databases:
        database_url = dsn_from_django(databases["default"])
        if database_url is not None:
            source = "the Django default database"
    tables_option = options.get("tables")
    publication = options.get("publication") or None
    tables: tuple[str, ...] | None = None
    if tables_option:
        tables = tuple(t.strip() for t in tables_option.split(",") if t.strip())
    if publication is None and tables is None:
        publication, tables = conf.publication, conf.tables
    if publication is not None and tables is not None:
        raise ConfigurationError("give either a publication or tables to read, not both")
    port = options.get("port")
    return ServerOptions(
        host=options.get("host") or conf.host,
        port=conf.port if port is None else port,
        jwt_secret=options.get("jwt_secret") or conf.jwt_secret or LOCAL_DEV_JWT_SECRET,
        database_url=database_url,
        database_source=source,
        publication=publication,
        tables=tables,
    )


class Command(BaseCommand):
    help = (
        "Run a local Supabase Realtime server (websocket at /realtime/v1/websocket, REST at "
        "/realtime/v1/api/broadcast) that delivers database changes from PostgreSQL's WAL. "
        "Stops on SIGINT or SIGTERM. For local development only: the default JWT secret is "
        "public."
    )
    server_class: type[DevServer] = DevServer
    # It needs no settings of its own, so a project without SUPA_REALTIME can run it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host", default=None, help='Address (default DEVSERVER["HOST"], 127.0.0.1).'
        )
        parser.add_argument(
            "--port",
            type=int,
            default=None,
            help=f'Port (default DEVSERVER["PORT"], {DEFAULT_PORT} like the Supabase CLI; '
            "0 picks a free one).",
        )
        parser.add_argument(
            "--jwt-secret",
            default=None,
            help='HMAC secret of the tokens (default DEVSERVER["JWT_SECRET"] or '
            "$SUPABASE_JWT_SECRET, else the Supabase CLI's public local development secret).",
        )
        database = parser.add_mutually_exclusive_group()
        database.add_argument(
            "--database-url",
            default=None,
            help="Deliver the changes of this PostgreSQL database (wal2json, wal_level=logical) "
            'as postgres_changes (default DEVSERVER["DATABASE_URL"], else the Django default '
            "database when it is PostgreSQL).",
        )
        database.add_argument(
            "--no-database",
            action="store_true",
            help="Read no database; changes only come from DevServer.emit_change().",
        )
        parser.add_argument(
            "--publication",
            default=None,
            help="Read only the tables of this publication, as Supabase reads "
            'supabase_realtime (default DEVSERVER["PUBLICATION"]; unset: every table).',
        )
        parser.add_argument(
            "--tables",
            default=None,
            help='Or read only these comma-separated "schema.table" patterns '
            '(default DEVSERVER["TABLES"]).',
        )
        parser.add_argument(
            "--print-keys",
            action="store_true",
            help="Also print the local anon and service_role keys.",
        )
        parser.add_argument(
            "--realtime-delays",
            action="store_true",
            help="Answer refused handshakes after 2 s and join errors after 5 s, as Realtime does.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        configure_logging(options["verbosity"])
        try:
            resolved = resolve_options(options)
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        delays = options["realtime_delays"]
        server = self.server_class(
            resolved.host,
            resolved.port,
            resolved.jwt_secret,
            connect_error_delay=2.0 if delays else 0.0,
            join_error_delay=5.0 if delays else 0.0,
        )
        companions = []
        if resolved.database_url:
            companions.append(
                WalReader(
                    resolved.database_url,
                    on_change=server.emit_change,
                    publication=resolved.publication,
                    tables=resolved.tables,
                )
            )
        print_keys = bool(options["print_keys"])
        try:
            asyncio.run(
                run_until_signalled(
                    server, lambda s: self._announce(s, resolved, print_keys), companions
                )
            )
        except (PrerequisiteError, OSError) as exc:
            raise CommandError(str(exc)) from None

    def _announce(self, server: DevServer, resolved: ServerOptions, print_keys: bool) -> None:
        self.stdout.write(f"Realtime dev server listening on {server.http_url}")
        self.stdout.write(f"SUPABASE_URL={server.http_url}")
        self.stdout.write(f"REALTIME_URL={server.ws_url}")
        if print_keys:
            # Local development keys, printed on request for the developer to copy.
            self.stdout.write(f"SUPABASE_ANON_KEY={server.anon_key}")
            self.stdout.write(f"SUPABASE_SERVICE_ROLE_KEY={server.service_role_key}")
        else:
            self.stdout.write("API keys: add --print-keys to show the anon and service_role keys.")
        if resolved.database_url:
            if resolved.publication:
                what = f"the tables of publication {resolved.publication}"
            elif resolved.tables:
                what = ", ".join(resolved.tables)
            else:
                what = "every table"
            self.stdout.write(
                f"Database changes: {what} of {redact_dsn(resolved.database_url)} "
                f"(from {resolved.database_source})"
            )
        else:
            self.stdout.write(f"Database changes: {resolved.database_source}")
        self.stdout.write("Press Ctrl+C to stop.")
        self.stdout.flush()
