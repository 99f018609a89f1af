"""The demo's live table app."""

from __future__ import annotations

from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "demo_project.live"
    label = "live"
    verbose_name = "Live table"
    default_auto_field = "django.db.models.BigAutoField"
