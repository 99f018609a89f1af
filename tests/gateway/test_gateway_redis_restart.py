"""The hub survives a Redis restart: it joins its groups again and relays resume."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
from channels_redis.core import RedisChannelLayer

from supa_realtime.groups import group_for
from supa_realtime.testing import free_port
from supa_realtime.testing.devserver import eventually
from tests.gateway.gateway_support import GatewayServer, connect, gateway_env, spawn_server


def _redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                if client.ping():
                    return process
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)
    finally:
        client.close()


async def test_relays_resume_after_redis_restarts(
    gateway_db: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    store = _redis(port, tmp_path)
    realtime = {
        "URL": "http://127.0.0.1:9",
        "KEY": "k",
        "REDIS_URL": url,
        "GATEWAY": {"TOPICS": {"*": {"join": "any"}}},
    }
    web_port = free_port()
    log = tmp_path / "daphne.log"
    server = GatewayServer(
        spawn_server(log, web_port, gateway_env(gateway_db[0], url, "restart", realtime)),
        web_port,
        log,
    )
    layer = RedisChannelLayer(hosts=[url], prefix="restart")
    message = {"type": "realtime.broadcast", "topic": "realtime:r", "event": "e", "payload": {}}
    try:
        await eventually(lambda: _listening(web_port), within=20)
        async with await connect(server) as client:
            await client.join("r")
            store.terminate()
            store.wait(10)
            store = _redis(port, tmp_path)

            # the hub notices, waits, joins the group again; then relays arrive
            async def delivered() -> bool:
                await layer.group_send(group_for("realtime:r"), message)
                try:
                    await client.expect("broadcast", within=0.5)
                except TimeoutError:
                    return False
                return True

            await eventually(delivered, within=20)
            assert "rejoined 1 topic groups" in log.read_text()
    finally:
        await layer.close_pools()
        server.stop()
        store.terminate()
        store.wait(10)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
