"""Pytest fixtures for the local Realtime server, and a raw protocol client for exact tests.

Fixtures (function scoped, async):

``realtime_server``
    A started :class:`~supa_realtime.devserver.DevServer` on a free 127.0.0.1 port with
    default options; stopped (every socket closed, every task awaited) after the test.
``realtime_server_factory``
    ``server = await realtime_server_factory(idle_timeout=1.0, limits=Limits(...))`` starts
    a server with any :class:`DevServer` options; all are stopped after the test.

Helpers:

:func:`eventually`
    Wait, with a deadline, until a condition holds.
:class:`RawClient`
    A bare websocket speaking V1 or V2 frames through our serializers, to check frames
    byte for byte.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio
import websockets
from websockets.asyncio.client import ClientConnection

from ..devserver import DevServer
from ..phoenix import constants as c
from ..phoenix.message import Message
from ..phoenix.serializer import Serializer, serializer_for

__all__ = ["RawClient", "eventually", "realtime_server", "realtime_server_factory"]

DEFAULT_TIMEOUT = 5.0

ServerFactory = Callable[..., Awaitable[DevServer]]


async def eventually(
    condition: Callable[[], Any], within: float = DEFAULT_TIMEOUT, interval: float = 0.01
) -> Any:
    """Poll ``condition`` (sync or async) until it returns something truthy; return that.

    Raises:
        TimeoutError: the condition still failed after ``within`` seconds.
    """
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {within:g} s")
        await asyncio.sleep(interval)


@pytest_asyncio.fixture
async def realtime_server_factory() -> AsyncIterator[ServerFactory]:
    """Start servers with any options; every one is stopped after the test."""
    servers: list[DevServer] = []

    async def make(**options: Any) -> DevServer:
        server = DevServer(**options)
        await server.start()
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in reversed(servers):
            await server.stop()


@pytest_asyncio.fixture
async def realtime_server(realtime_server_factory: ServerFactory) -> DevServer:
    """A started local Realtime server with default options."""
    return await realtime_server_factory()


class RawClient:
    """One websocket to a :class:`DevServer` that sends and receives :class:`Message` frames.

    ``frames`` keeps every frame received, raw, in order.
    """

    def __init__(self, ws: ClientConnection, serializer: Serializer) -> None:
        self.ws = ws
        self.serializer = serializer
        self.frames: list[str | bytes] = []
        self._ref = 0

    @classmethod
    async def connect(
        cls,
        server: DevServer,
        *,
        vsn: str | None = c.VSN_2,
        token: str | None = None,
        path: str = "/realtime/v1/websocket",
        headers: dict[str, str] | None = None,
        max_size: int | None = 16 * 1024 * 1024,
    ) -> RawClient:
        """Open a socket (``token`` defaults to the server's anon key; ``""`` sends none)."""
        key = server.anon_key if token is None else token
        query = [f"vsn={vsn}"] if vsn is not None else []
        if key:
            query.append(f"apikey={key}")
        url = f"ws://{server.host}:{server.port}{path}" + ("?" + "&".join(query) if query else "")
        ws = await websockets.connect(
            url, additional_headers=headers, max_size=max_size, ping_interval=None
        )
        return cls(ws, serializer_for(vsn, "client"))

    def next_ref(self) -> str:
        self._ref += 1
        return str(self._ref)

    async def send(self, message: Message | str | bytes) -> None:
        frame = self.serializer.encode(message) if isinstance(message, Message) else message
        await self.ws.send(frame)

    async def recv_raw(self, within: float = DEFAULT_TIMEOUT) -> str | bytes:
        async with asyncio.timeout(within):
            frame = await self.ws.recv()
        self.frames.append(frame)
        return frame

    async def recv(self, within: float = DEFAULT_TIMEOUT) -> Message:
        return self._decode(await self.recv_raw(within))

    def _decode(self, frame: str | bytes) -> Message:
        return self.serializer.decode(frame)

    async def expect(
        self,
        event: str | None = None,
        *,
        topic: str | None = None,
        ref: str | None = None,
        within: float = DEFAULT_TIMEOUT,
    ) -> Message:
        """The next message matching ``event``/``topic``/``ref``; other messages are skipped."""
        async with asyncio.timeout(within):
            while True:
                message = await self.recv(within=within)
                if event is not None and message.event != event:
                    continue
                if topic is not None and message.topic != topic:
                    continue
                if ref is not None and message.ref != ref:
                    continue
                return message

    async def join(
        self,
        topic: str,
        config: dict[str, Any] | None = None,
        *,
        access_token: str | None = None,
        join_ref: str | None = None,
    ) -> Message:
        """Send ``phx_join`` and return its reply (join_ref = ref unless given)."""
        ref = self.next_ref()
        payload: dict[str, Any] = {"config": config or {}}
        if access_token is not None:
            payload["access_token"] = access_token
        full = topic if topic.startswith(c.TOPIC_PREFIX) else c.TOPIC_PREFIX + topic
        await self.send(
            Message(
                full, c.PHX_JOIN, payload, ref=ref, join_ref=ref if join_ref is None else join_ref
            )
        )
        return await self.expect(c.PHX_REPLY, topic=full, ref=ref)

    async def push(
        self, topic: str, event: str, payload: Any, *, join_ref: str | None = None
    ) -> str:
        """Send a push with a fresh ref; returns the ref."""
        ref = self.next_ref()
        await self.send(Message(topic, event, payload, ref=ref, join_ref=join_ref))
        return ref

    async def close(self) -> None:
        await self.ws.close()

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
