"""Settings of the daphne processes the gateway tests start (read from the environment)."""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["GATEWAY_DB"]}}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [os.environ["REDIS_URL"]],
            "prefix": os.environ["CHANNEL_LAYER_PREFIX"],
            # The gateway hub's one channel per process receives for every socket.
            "channel_capacity": {"gateway.*": 10_000},
        },
    },
}

SUPA_REALTIME = json.loads(os.environ["GATEWAY_SUPA_REALTIME"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"supa_realtime": {"handlers": ["console"], "level": "INFO"}},
}
