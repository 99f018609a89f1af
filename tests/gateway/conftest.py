"""Fixtures of the gateway tests: daphne processes serving ``RealtimeConsumer`` on loopback.

Each server is a real ``daphne`` subprocess with ``tests.gateway.gateway_settings``; its
``SUPA_REALTIME`` comes from the test, its Redis and channel layer are the test's (so the
test can play the worker with ``group_send``). Users live in a SQLite file shared by every
server of the session.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from supa_realtime.testing import free_port
from tests.gateway.gateway_support import (
    GatewayFactory,
    GatewayServer,
    gateway_env,
    spawn_server,
)

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0


@pytest.fixture(scope="session")
def gateway_db() -> Iterator[tuple[Path, dict[str, Any]]]:
    """A SQLite file with users alice, bob (staff) and carol (auth.view_user)."""
    with tempfile.TemporaryDirectory(prefix="gateway-db-") as directory:
        path = Path(directory) / "db.sqlite3"
        env = gateway_env(path, "redis://127.0.0.1:9/0", "unused", {})
        done = subprocess.run(
            [sys.executable, "-m", "tests.gateway.gateway_setup"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        yield path, json.loads(done.stdout.strip().splitlines()[-1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def layer_prefix(channel_layer_config: dict[str, Any]) -> str:
    prefix: str = channel_layer_config["CONFIG"]["prefix"]
    return prefix


@pytest.fixture
def gateway_settings(redis_server: str) -> dict[str, Any]:
    """The ``SUPA_REALTIME`` the servers of this test get; tests change ``["GATEWAY"]``."""
    return {
        "URL": "http://127.0.0.1:9",
        "KEY": "tests-only-placeholder-key",
        "REDIS_URL": redis_server,
        "REDIS_PREFIX": f"gw-{uuid.uuid4().hex[:10]}",
        "SUBSCRIPTIONS": [],
        "GATEWAY": {
            "TOPICS": {"room:*": {"join": "any", "broadcast": "any", "presence": "any"}},
            "PRESENCE_TTL": 2.0,
            "PRESENCE_REFRESH": 0.5,
            "PRESENCE_SWEEP": 0.5,
        },
    }


@pytest_asyncio.fixture
async def gateway_factory(
    gateway_db: tuple[Path, dict[str, Any]],
    redis_server: str,
    layer_prefix: str,
    gateway_settings: dict[str, Any],
    tmp_path: Path,
) -> AsyncIterator[GatewayFactory]:
    """``server = await gateway_factory(**GATEWAY)``: start a daphne process (or uvicorn with
    ``asgi_server="uvicorn"``) with these ``GATEWAY`` settings; all stopped afterwards."""
    servers: list[GatewayServer] = []

    async def start(asgi_server: str = "daphne", **gateway: Any) -> GatewayServer:
        realtime = json.loads(json.dumps(gateway_settings))
        realtime["GATEWAY"].update(gateway)
        port = free_port()
        log = tmp_path / f"{asgi_server}-{port}.log"
        env = gateway_env(gateway_db[0], redis_server, layer_prefix, realtime)
        process = spawn_server(log, port, env, asgi_server)
        server = GatewayServer(process, port, log)
        servers.append(server)
        deadline = time.monotonic() + START_TIMEOUT
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not start:\n{server.log_text()[-3000:]}")
            await asyncio.sleep(0.05)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def users(gateway_db: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    return gateway_db[1]
