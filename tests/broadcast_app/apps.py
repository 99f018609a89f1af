from django.apps import AppConfig


class BroadcastAppConfig(AppConfig):
    name = "tests.broadcast_app"
    label = "broadcast_app"
    default_auto_field = "django.db.models.BigAutoField"
