"""Pytest fixtures and helpers for testing code that uses supa_realtime.

Enable them in a ``conftest.py``::

    pytest_plugins = ["supa_realtime.testing"]

Everything runs for real on 127.0.0.1:

- ``realtime_server`` / ``realtime_server_factory``: the local Realtime server
  (:mod:`supa_realtime.testing.devserver`);
- ``postgres_server`` / ``postgres_dsn``: a throwaway PostgreSQL cluster with logical decoding
  (:mod:`supa_realtime.testing.postgres`);
- ``redis_server``, ``channel_layer``, ``redis_channel_layers`` and ``capture_group``: a real
  ``redis-server``, a ``channels_redis`` layer on it and a recorder of what reaches a group
  (:mod:`supa_realtime.testing.redis`);
- ``running_worker``: run a relay worker inside a test (:mod:`supa_realtime.testing.worker`).
"""

from __future__ import annotations

from supa_realtime.testing.devserver import realtime_server, realtime_server_factory
from supa_realtime.testing.postgres import postgres_dsn, postgres_server
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
from supa_realtime.testing.worker import running_worker

__all__ = [
    "GroupCapture",
    "RedisServer",
    "capture_group",
    "channel_layer",
    "channel_layer_config",
    "free_port",
    "postgres_dsn",
    "postgres_server",
    "realtime_server",
    "realtime_server_factory",
    "redis_channel_layers",
    "redis_server",
    "running_worker",
]
