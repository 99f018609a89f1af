"""realtime-js (vsn 2.0.0, binary broadcasts) and the official Python client (vsn 1.0.0) in
one room of the local server.

The JS peer is ``tests/devserver/js/realtime_js_peer.mjs``. Its dependencies are installed
with ``npm ci`` in that folder on first use (the npm registry must be reachable then); the
test is skipped only when Node.js itself is missing.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from realtime import AsyncRealtimeClient

from supa_realtime.devserver import DevServer
from supa_realtime.phoenix.serializer import encode_user_broadcast
from supa_realtime.testing.devserver import RawClient, eventually

JS_DIR = Path(__file__).resolve().parent / "js"
TOPIC = "realtime:room1"


def _node_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < 20:
        pytest.skip(f"Node.js {version.stdout.strip()} has no WebSocket; 20 or later is needed")
    # Node 20 and 21 ship WebSocket behind a flag; 22 has it by default.
    return [node, "--experimental-websocket"] if major < 22 else [node]


@pytest.fixture(scope="module")
def node_command() -> list[str]:
    command = _node_command()
    if not (JS_DIR / "node_modules" / "@supabase" / "realtime-js").is_dir():
        npm = shutil.which("npm")
        assert npm is not None, "npm is needed to install the JS peer's dependencies"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS_DIR,
            check=True,
            timeout=300,
        )
    return command


class JsPeer:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[dict[str, Any]] = []

    async def expect(self, kind: str, within: float = 10.0) -> dict[str, Any]:
        """The next line of ``kind`` (earlier lines of other kinds are kept in ``seen``)."""
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise AssertionError(f"the JS peer ended; it printed {self.seen}")
                event = orjson.loads(line)
                self.seen.append(event)
                if event["kind"] == kind:
                    return event


@pytest.fixture
async def js_peer(node_command: list[str], realtime_server: DevServer) -> AsyncIterator[JsPeer]:
    process = await asyncio.create_subprocess_exec(
        *node_command,
        str(JS_DIR / "realtime_js_peer.mjs"),
        realtime_server.ws_url,
        realtime_server.anon_key,
        cwd=JS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield JsPeer(process)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_realtime_js_and_python_client_share_a_room(
    realtime_server: DevServer, js_peer: JsPeer
) -> None:
    python = AsyncRealtimeClient(
        realtime_server.ws_url, realtime_server.anon_key, auto_reconnect=False
    )
    from_js: list[Any] = []
    try:
        async with await RawClient.connect(realtime_server) as v2:
            await v2.join(TOPIC)
            room = python.channel("room1")
            room.on_broadcast("from-js", from_js.append)
            room.on_broadcast("bin", from_js.append)
            await room.subscribe()

            status = await js_peer.expect("status")
            assert status["status"] == "SUBSCRIBED", status
            sent = await js_peer.expect("sent")
            assert sent == {"kind": "sent", "json": "ok", "binary": "ok", "tracked": "ok"}

            # realtime-js pushes binary kind 3; a V2 socket gets kind 4, the V1 client JSON.
            frames = [await v2.recv_raw() for _ in range(3)]
            assert encode_user_broadcast(TOPIC, "from-js", {"a": 1}) in frames
            assert encode_user_broadcast(TOPIC, "bin", b"\x01\x02\x03") in frames
            await eventually(lambda: from_js)
            assert [(m["event"], m["payload"]) for m in from_js] == [("from-js", {"a": 1})]
            await eventually(lambda: "js-peer" in realtime_server.presence_state("room1"))

            await realtime_server.emit_change(
                {
                    "schema": "public",
                    "table": "todos",
                    "type": "INSERT",
                    "commit_timestamp": "2026-11-22T00:00:00.000Z",
                    "columns": [{"name": "id", "type": "int8"}, {"name": "title", "type": "text"}],
                    "record": {"id": 1, "title": "one"},
                    "errors": None,
                }
            )
            change = (await js_peer.expect("change"))["change"]
            assert (change["eventType"], change["new"]) == ("INSERT", {"id": 1, "title": "one"})

            await room.send_broadcast("to-js", {"b": 2})
            got = (await js_peer.expect("broadcast"))["message"]
            assert (got["event"], got["payload"]) == ("to-js", {"b": 2})

            await room.send_broadcast("bye", {})
            await js_peer.expect("bye")
            assert await asyncio.wait_for(js_peer.process.wait(), 10) == 0
            await eventually(lambda: "js-peer" not in realtime_server.presence_state("room1"))
    finally:
        await python.close()
