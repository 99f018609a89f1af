"""``manage.py realtime_worker``: relay Supabase Realtime into Channels groups until stopped."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from supa_realtime.exceptions import ConfigurationError
from supa_realtime.worker import Worker, run_until_signalled

_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


class Command(BaseCommand):
    help = (
        "Hold the websocket to Supabase Realtime and relay database changes, broadcasts and "
        "presence of SUPA_REALTIME['SUBSCRIPTIONS'] into Channels groups. Stops cleanly on "
        "SIGTERM or SIGINT."
    )
    worker_class: type[Worker] = Worker

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", help="Supabase project URL (default: SUPA_REALTIME['URL'] / SUPABASE_URL)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        _configure_logging(_LEVELS.get(options["verbosity"], logging.INFO))
        overrides = {"url": options["url"]} if options.get("url") else {}
        try:
            worker = self.worker_class.from_settings(**overrides)
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        asyncio.run(run_until_signalled(worker))


def _configure_logging(level: int) -> None:
    """Send supa_realtime's log lines to stderr unless the project configured logging."""
    package_logger = logging.getLogger("supa_realtime")
    if package_logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_logger.addHandler(handler)
    package_logger.setLevel(level)
