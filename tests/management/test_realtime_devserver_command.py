"""``manage.py realtime_devserver`` as a real process: prints URLs (keys on request), serves."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import orjson
import psycopg
import pytest
import websockets

from supa_realtime.testing.postgres import postgres_dsn, postgres_server

__all__ = ["postgres_dsn", "postgres_server"]  # fixtures used here

ROOT = Path(__file__).resolve().parents[2]


async def read_settings(process: asyncio.subprocess.Process) -> dict[str, str]:
    assert process.stdout is not None
    found: dict[str, str] = {}
    async with asyncio.timeout(20):
        while "SUPABASE_SERVICE_ROLE_KEY" not in found:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise AssertionError("the command ended before printing its keys")
            name, sep, value = line.strip().partition("=")
            if sep:
                found[name] = value
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_command_serves_until_signalled(sig: signal.Signals) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    env.pop("SUPABASE_JWT_SECRET", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "realtime_devserver",
        "--port",
        "0",
        "--print-keys",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        printed = await read_settings(process)
        assert printed["SUPABASE_URL"].startswith("http://127.0.0.1:")
        assert (
            printed["REALTIME_URL"]
            == printed["SUPABASE_URL"].replace("http", "ws") + "/realtime/v1"
        )
        url = f"{printed['REALTIME_URL']}/websocket?apikey={printed['SUPABASE_ANON_KEY']}&vsn=2.0.0"
        async with websockets.connect(url) as ws:
            await ws.send('[null,"1","phoenix","heartbeat",{}]')
            reply = await asyncio.wait_for(ws.recv(), 5)
        assert reply == '[null,"1","phoenix","phx_reply",{"status":"ok","response":{}}]'
        process.send_signal(sig)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, stderr.decode()[-2000:]
        assert printed["SUPABASE_ANON_KEY"] not in stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_command_delivers_wal_changes(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE todos (id bigint PRIMARY KEY, title text)")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "realtime_devserver",
        "--port",
        "0",
        "--database-url",
        postgres_dsn,
        "--print-keys",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        printed = await read_settings(process)
        url = f"{printed['REALTIME_URL']}/websocket?apikey={printed['SUPABASE_ANON_KEY']}"
        async with websockets.connect(url) as ws:
            binding = {"event": "INSERT", "schema": "public", "table": "todos", "filter": "id=eq.2"}
            await ws.send(
                orjson.dumps(
                    {
                        "topic": "realtime:db",
                        "event": "phx_join",
                        "ref": "1",
                        "join_ref": None,
                        "payload": {"config": {"postgres_changes": [binding]}},
                    }
                ).decode()
            )
            reply = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["payload"]["status"] == "ok"
            with psycopg.connect(postgres_dsn, autocommit=True) as conn:
                conn.execute("INSERT INTO todos VALUES (1, 'one')")
                conn.execute("INSERT INTO todos VALUES (2, 'two')")
            async with asyncio.timeout(20):
                while True:
                    frame = orjson.loads(await ws.recv())
                    if frame["event"] == "postgres_changes":
                        break
        assert frame["payload"]["data"]["record"] == {"id": 2, "title": "two"}
        assert frame["payload"]["ids"] == [
            reply["payload"]["response"]["postgres_changes"][0]["id"]
        ]
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, stderr.decode()[-2000:]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_keys_are_printed_only_on_request() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    env.pop("SUPABASE_JWT_SECRET", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "realtime_devserver",
        "--port",
        "0",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(20):
            while not lines or lines[-1] != "Press Ctrl+C to stop.":
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise AssertionError(f"the command ended early: {lines}")
                lines.append(line.strip())
        printed = "\n".join(lines)
        assert "SUPABASE_URL=http://127.0.0.1:" in printed
        assert "--print-keys" in printed
        assert "KEY=" not in printed
        assert "eyJ" not in printed  # no JWT at all
        assert "Database changes: none" in printed  # tests.settings uses SQLite
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, stderr.decode()[-2000:]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
