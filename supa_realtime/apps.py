"""The Django app configuration of supa_realtime."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks

from supa_realtime.checks import (
    check_channel_layer,
    check_gateway,
    check_settings,
    check_subscriptions,
)


class SupaRealtimeConfig(AppConfig):
    """Registers the system checks (see :mod:`supa_realtime.checks`)."""

    name = "supa_realtime"
    verbose_name = "Supabase Realtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        checks.register(check_settings)
        checks.register(check_channel_layer)
        checks.register(check_subscriptions)
        checks.register(check_gateway)
