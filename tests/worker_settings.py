"""Test settings for a ``manage.py realtime_worker`` subprocess: subscriptions come as JSON in
the environment (``SUPA_REALTIME_TEST_SUBSCRIPTIONS``)."""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import SUPA_REALTIME

SUPA_REALTIME = {
    **SUPA_REALTIME,
    "SUBSCRIPTIONS": json.loads(os.environ.get("SUPA_REALTIME_TEST_SUBSCRIPTIONS", "[]")),
    "RECONNECT": {"INITIAL_DELAY": 0.05, "MAX_DELAY": 0.2, "MAX_RETRIES": None},
}
