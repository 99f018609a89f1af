"""The live page's websocket end to end: a row inserted with psycopg into the demo's table in a
real PostgreSQL → the local Realtime server's WAL reader → the worker → Redis → ``/ws/live/``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from channels.testing import WebsocketCommunicator
from psycopg.conninfo import conninfo_to_dict

from demo_project import settings as demo_settings
from supa_realtime.conf import settings as realtime_settings
from supa_realtime.devserver import DevServer
from supa_realtime.devserver.wal import WalReader
from supa_realtime.testing.devserver import eventually
from supa_realtime.worker import Worker

ROOT = Path(__file__).resolve().parents[2]
RECEIVE_TIMEOUT = 20.0


def database_url(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    return f"postgres://{params['user']}@{params['host']}:{params['port']}/{params['dbname']}"


def migrate_demo(dsn: str) -> None:
    """Run the live app's real migrations (table + publication) with the demo's settings."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DATABASE_URL": database_url(dsn),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "live", "--noinput", "--skip-checks", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


async def receive_until(
    communicator: WebsocketCommunicator, match: Callable[[dict[str, Any]], bool]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Frames from the socket until one matches (deadline ``RECEIVE_TIMEOUT``)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + RECEIVE_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching frame in time; received {seen}")
        frame: dict[str, Any] = await communicator.receive_json_from(timeout=remaining)
        seen.append(frame)
        if match(frame):
            return frame, seen


def is_change(kind: str) -> Callable[[dict[str, Any]], bool]:
    def match(frame: dict[str, Any]) -> bool:
        return bool(frame["type"] == "postgres_change" and frame["data"]["type"] == kind)

    return match


@pytest.fixture
async def demo_relay(
    postgres_dsn: str,
    realtime_server: DevServer,
    channel_layer: Any,
    redis_channel_layers: dict[str, Any],
    settings: Any,
) -> AsyncIterator[DevServer]:
    """The demo's pipeline in process: its WAL reader on its publication, and its worker."""
    migrate_demo(postgres_dsn)
    settings.SUPA_REALTIME = demo_settings.SUPA_REALTIME
    reader = WalReader(
        postgres_dsn,
        on_change=realtime_server.emit_change,
        publication=realtime_settings.DEVSERVER.publication,
    )
    worker = Worker(
        url=realtime_server.http_url,
        key=realtime_server.service_role_key,
        subscriptions=realtime_settings.SUBSCRIPTIONS,
        layer=channel_layer,
    )
    stop = asyncio.Event()
    async with reader:
        task = asyncio.create_task(worker.run(stop))
        try:
            await asyncio.wait_for(worker.ready.wait(), RECEIVE_TIMEOUT)
            yield realtime_server
        finally:
            stop.set()
            await asyncio.wait_for(task, RECEIVE_TIMEOUT)


@pytest.mark.django_db
async def test_a_row_inserted_with_psycopg_reaches_the_live_socket(
    demo_relay: DevServer, postgres_dsn: str
) -> None:
    from demo_project.asgi import application

    communicator = WebsocketCommunicator(
        application, "/ws/live/", headers=[(b"origin", b"http://127.0.0.1:8000")]
    )
    connected, _ = await communicator.connect(timeout=RECEIVE_TIMEOUT)
    assert connected
    try:
        # The consumer joins its groups while connecting; prove they reach it, then write.
        await eventually(lambda: demo_relay.subscribers("demo") >= 1, within=RECEIVE_TIMEOUT)
        await demo_relay.broadcast("demo", "message", {"text": "<b>hi</b>"})
        frame, _ = await receive_until(communicator, lambda f: f["type"] == "broadcast")
        assert frame["topic"] == "realtime:demo"
        assert (frame["event"], frame["payload"]) == ("message", {"text": "<b>hi</b>"})

        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO todos (title, done, created_at) VALUES (%s, false, now())",
                ("written with psycopg",),
            )
            conn.execute("UPDATE todos SET done = true WHERE title = %s", ("written with psycopg",))
            conn.execute("DELETE FROM todos")

        changes: list[dict[str, Any]] = []
        for kind in ("INSERT", "UPDATE", "DELETE"):
            change, _ = await receive_until(communicator, is_change(kind))
            changes.append(change)
        insert, update, delete = changes
        assert insert["topic"] == "realtime:todos"
        assert insert["data"]["schema"] == "public"
        assert insert["data"]["table"] == "todos"
        record = insert["data"]["record"]
        assert record["title"] == "written with psycopg"
        assert record["done"] is False
        assert update["data"]["record"]["done"] is True
        assert delete["data"]["old_record"] == {"id": record["id"]}
    finally:
        await communicator.disconnect()
