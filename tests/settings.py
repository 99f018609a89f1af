"""Settings for the test suite.

The channel layer points at ``REDIS_URL`` (with ``CHANNEL_LAYER_PREFIX``), which tests that start
processes set from the ``redis_server`` fixture; in-process tests use the
``redis_channel_layers`` fixture instead. Nothing here needs a Supabase project.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "tests-only-insecure-secret-key"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "supa_realtime",
    "tests.broadcast_app",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
ASGI_APPLICATION = "demo_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                    # Longer than channels_redis's 5 s blocking receive (supa_realtime.W004).
                    "socket_timeout": 30,
                }
            ],
            "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "asgi"),
        },
    },
}

SUPA_REALTIME: dict[str, Any] = {
    "URL": os.environ.get("SUPABASE_URL", "http://127.0.0.1:4000"),
    "KEY": os.environ.get("SUPABASE_KEY", "tests-only-placeholder-key"),
    "SUBSCRIPTIONS": [],
    "REDIS_PREFIX": os.environ.get("SUPA_REALTIME_REDIS_PREFIX", "supa_realtime"),
    # A short lease so that worker-process tests see a takeover quickly.
    "WORKER": {"LEASE_TTL": 1.5, "STATUS_INTERVAL": 0.2},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
