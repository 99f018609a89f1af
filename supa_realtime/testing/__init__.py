"""Pytest fixtures and helpers for testing code that uses supa_realtime.

Enable them in a ``conftest.py``::

    pytest_plugins = ["supa_realtime.testing"]

Everything runs for real on 127.0.0.1: ``redis_server`` starts ``redis-server``,
``channel_layer`` is a ``channels_redis`` layer on it, and ``capture_group`` records what reaches
a Channels group (see :mod:`supa_realtime.testing.redis`).
"""

from __future__ import annotations

from supa_realtime.testing.redis import (
    GroupCapture,
    RedisServer,
    capture_group,
    channel_layer,
    channel_layer_config,
    free_port,
    redis_channel_layers,
    redis_server,
)

__all__ = [
    "GroupCapture",
    "RedisServer",
    "capture_group",
    "channel_layer",
    "channel_layer_config",
    "free_port",
    "redis_channel_layers",
    "redis_server",
]
