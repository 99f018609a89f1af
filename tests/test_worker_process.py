"""``manage.py realtime_worker`` as a real process: relays, logs, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from supa_realtime.devserver import DevServer
from supa_realtime.groups import group_for
from supa_realtime.testing import GroupCapture
from supa_realtime.testing.devserver import eventually

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "realtime:room1"


def start_worker(server: DevServer, config: dict[str, Any]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "SUPABASE_URL": server.http_url,
        "SUPABASE_KEY": server.service_role_key,
        "REDIS_URL": config["hosts"][0]["address"],
        "CHANNEL_LAYER_PREFIX": config["prefix"],
        "SUPA_REALTIME_TEST_SUBSCRIPTIONS": json.dumps([{"topic": "room1"}]),
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "realtime_worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def test_worker_process_relays_and_exits_0_on_sigterm(
    realtime_server: DevServer, channel_layer: Any, channel_layer_config: dict[str, Any]
) -> None:
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    proc = start_worker(realtime_server, channel_layer_config["CONFIG"])
    try:
        await eventually(lambda: realtime_server.subscribers(TOPIC) >= 1, within=30)
        await realtime_server.broadcast("room1", "hello", {"from": "server"})
        [message] = await capture.wait_for(1)
        assert message == {
            "type": "realtime.broadcast",
            "topic": TOPIC,
            "event": "hello",
            "payload": {"from": "server"},
        }
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        output = proc.stdout.read().decode() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await capture.stop()
    assert code == 0, output
    assert realtime_server.subscribers(TOPIC) == 0
    assert "joined realtime:room1" in output
    assert "relaying realtime:room1 to group realtime.room1" in output
    assert "connected to" in output
    assert "worker stopped" in output
    assert realtime_server.service_role_key not in output
