"""``manage.py realtime_worker``: relay Supabase Realtime into Channels groups until stopped."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from supa_realtime.exceptions import ConfigurationError, LeaseLost
from supa_realtime.management.logs import configure_logging
from supa_realtime.worker import Worker, run_until_signalled


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
        parser.add_argument(
            "--status",
            action="store_true",
            help="Print the workers' status (lease holder, outbox, counters) and exit.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options.get("status"):
            from redis.exceptions import RedisError

            try:
                status = current_status()
            except (OSError, RedisError) as exc:
                raise CommandError(
                    f"cannot read the status from Redis (SUPA_REALTIME['REDIS_URL']): "
                    f"{type(exc).__name__}"
                ) from None
            self.stdout.write(format_status(status))
            return
        configure_logging(options["verbosity"])
        overrides = {"url": options["url"]} if options.get("url") else {}
        try:
            worker = self.worker_class.from_settings(**overrides)
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        try:
            asyncio.run(run_until_signalled(worker))
        except LeaseLost as exc:
            raise CommandError(str(exc)) from None


def current_status() -> dict[str, Any]:
    """The status ``--status`` prints, read from Redis."""
    import redis

    from supa_realtime.conf import settings as realtime_settings
    from supa_realtime.outbox import OutboxKeys, read_status

    client = redis.Redis.from_url(realtime_settings.REDIS_URL)
    try:
        return read_status(client, OutboxKeys(realtime_settings.REDIS_PREFIX))
    finally:
        client.close()


def format_status(status: dict[str, Any]) -> str:
    """One ``name: value`` line per field."""
    holder = status["lease_holder"] or "none (no active worker)"
    lines = [
        f"lease holder: {holder}",
        f"connected: {'yes' if status['connected'] and status['lease_holder'] else 'no'}",
        f"outbox length: {status['outbox_length']}",
        f"outbox pending (sent, awaiting ack): {status['outbox_pending']}",
        f"outbox unread: {status['outbox_unread']}",
        f"sent: {status['sent']}",
        f"dropped: {status['dropped']}",
        f"failed: {status['failed']}",
        f"last error: {status['last_error'] or '-'}",
    ]
    return "\n".join(lines)
