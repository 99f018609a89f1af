"""Settings of the demo site. Everything comes from the environment, with local defaults.

``./dev demo`` sets ``SUPABASE_URL``, ``SUPABASE_KEY``, ``SUPABASE_JWT_SECRET``, ``REDIS_URL``
and ``DATABASE_URL`` (``postgres://user:pass@host:port/db``; its own PostgreSQL in ``.demo/pg``
unless you set one) for the services it starts. Without ``DATABASE_URL`` the site falls back to a
SQLite file under ``.demo/``, where the live table gets no changes from the WAL.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
DEMO_DIR = Path(os.environ.get("SUPA_REALTIME_DEMO_DIR", BASE_DIR / ".demo"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-secret-key")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

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
    "demo_project.live",
    "demo_project.chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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


def database_from_url(url: str) -> dict[str, Any]:
    """A ``DATABASES`` entry from ``postgres://user:password@host:port/name``."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("DATABASE_URL must start with postgres:// or postgresql://")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DEMO_DIR / "db.sqlite3"}
    }

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# A consumer's receive blocks in Redis for up to 5 s (channels_redis's BZPOPMIN timeout); redis-py
# 8 gives up reading after 5 s by default, which would close idle websockets. Read for longer.
CHANNEL_LAYER_SOCKET_TIMEOUT = 30.0

CHANNEL_LAYERS: dict[str, Any] = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT}],
        },
    },
}

# URL, KEY and REDIS_URL default to SUPABASE_URL, SUPABASE_KEY and REDIS_URL. The worker relays
# broadcasts and presence of "demo" and every change of the live page's table; the local Realtime
# server reads that table from the supabase_realtime publication (its migration adds it there).
SUPA_REALTIME: dict[str, Any] = {
    "SUBSCRIPTIONS": [
        {"topic": "realtime:demo", "broadcast": "*", "presence": True},
        {
            "topic": "realtime:todos",
            "broadcast": [],
            "postgres_changes": [{"event": "*", "schema": "public", "table": "todos"}],
        },
    ],
    "DEVSERVER": {"PUBLICATION": "supabase_realtime"},
    # The browser gateway at /realtime/v1/websocket: signed-in users chat on chat:*.
    "GATEWAY": {
        "TOPICS": {
            "chat:*": {
                "join": "authenticated",
                "broadcast": "authenticated",
                "presence": "authenticated",
            },
        },
    },
}

LOGIN_URL = "chat-join"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "supa_realtime": {
            "handlers": ["console"],
            "level": os.environ.get("SUPA_REALTIME_LOG_LEVEL", "INFO"),
        },
    },
}
