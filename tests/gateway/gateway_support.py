"""Helpers of the gateway tests: the daphne server handle and a raw protocol client."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

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
