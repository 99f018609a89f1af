"""Settings of a ``manage.py realtime_worker`` subprocess that mirrors presence of ``room1``
with a short presence TTL (so a killed worker's mirror expires quickly)."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import SUPA_REALTIME

SUPA_REALTIME = {
    **SUPA_REALTIME,
    "SUBSCRIPTIONS": [{"topic": "room1", "presence": True}],
    "RECONNECT": {"INITIAL_DELAY": 0.05, "MAX_DELAY": 0.2, "MAX_RETRIES": None},
    "GATEWAY": {"PRESENCE_TTL": 1.0, "PRESENCE_REFRESH": 0.3},
}
