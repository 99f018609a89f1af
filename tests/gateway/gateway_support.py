"""Helpers of the gateway tests: the daphne server handle and a raw protocol client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import websockets

from supa_realtime.phoenix import constants as c
from supa_realtime.phoenix.serializer import serializer_for
from supa_realtime.testing.devserver import RawClient


class GatewayServer:
    """One daphne process serving the gateway."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/realtime/v1"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


async def connect(
    server: GatewayServer,
    *,
    vsn: str | None = c.VSN_2,
    token: str | None = None,
    session: str | None = None,
    origin: str | None = None,
) -> RawClient:
    """A raw protocol client on ``server`` (``session``: a session cookie; it needs an
    allowed ``origin``, which defaults to the server's own)."""
    query = [f"vsn={vsn}"] if vsn is not None else []
    if token:
        query.append(f"apikey={token}")
    url = f"{server.url}/websocket" + ("?" + "&".join(query) if query else "")
    headers: dict[str, str] = {}
    if session is not None:
        headers["Cookie"] = f"sessionid={session}"
        origin = origin or f"http://127.0.0.1:{server.port}"
    if origin is not None:
        headers["Origin"] = origin
    ws = await websockets.connect(url, additional_headers=headers, ping_interval=None)
    return RawClient(ws, serializer_for(vsn, "client"))


GatewayFactory = Callable[..., Awaitable[GatewayServer]]


ROOT = Path(__file__).resolve().parents[2]


def gateway_env(
    db: Path, redis_url: str, layer_prefix: str, realtime: dict[str, Any]
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.gateway.gateway_settings",
        GATEWAY_DB=str(db),
        REDIS_URL=redis_url,
        CHANNEL_LAYER_PREFIX=layer_prefix,
        GATEWAY_SUPA_REALTIME=json.dumps(realtime),
        PYTHONPATH=str(ROOT),
    )
    return env


def _command(server: str, port: int) -> list[str]:
    app = "tests.gateway.gateway_asgi:application"
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
            "--ws", "websockets", "--lifespan", "off", app,
        ]  # fmt: skip
    return [
        sys.executable, "-c", "from daphne.cli import CommandLineInterface as C; C.entrypoint()",
        "-b", "127.0.0.1", "-p", str(port), app,
    ]  # fmt: skip


def spawn_server(
    log: Path, port: int, env: dict[str, str], server: str = "daphne"
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            _command(server, port),
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
