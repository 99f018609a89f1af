"""Shared pieces of the broadcast, outbox and model-broadcast tests (their fixtures are in
tests/conftest.py): an in-process worker with the outbox, the official client as the
Supabase-side receiver, and a pausable TCP relay that holds a worker off a server until the
test lets it in."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from realtime import AsyncRealtimeClient

from supa_realtime.backoff import Backoff
from supa_realtime.conf import Subscription
from supa_realtime.devserver import DevServer
from supa_realtime.outbox import OutboxKeys
from supa_realtime.testing.devserver import eventually
from supa_realtime.testing.worker import running_worker
from supa_realtime.worker import Worker

FAST_RECONNECT = Backoff(initial=0.05, max_delay=0.2)


def make_worker(
    server: DevServer | str,
    layer: Any,
    client: Any,
    prefix: str,
    *subs: Subscription,
    key: str | None = None,
    **kwargs: Any,
) -> Worker:
    url = server if isinstance(server, str) else server.http_url
    options: dict[str, Any] = {
        "reconnect": FAST_RECONNECT,
        "push_timeout": 2.0,
        "lease_ttl": 1.5,
        "status_interval": 0.1,
        **kwargs,
    }
    return Worker(
        url=url,
        key=key or (server.service_role_key if isinstance(server, DevServer) else ""),
        subscriptions=subs,
        layer=layer,
        redis=client,
        keys=OutboxKeys(prefix),
        **options,
    )


def running(worker: Worker) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    """Run ``worker`` (active or standby) for the block."""
    return running_worker(worker, wait_ready=False)


class Receiver:
    """The official ``realtime`` client subscribed to one topic, recording broadcasts."""

    def __init__(self, url: str, key: str, topic: str = "room1") -> None:
        self.client = AsyncRealtimeClient(url, key, auto_reconnect=False)
        self.topic = topic
        self.messages: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, server: DevServer, topic: str = "room1") -> Receiver:
        receiver = cls(server.ws_url, server.anon_key, topic)
        await receiver.client.connect()
        channel = receiver.client.channel(topic)
        record: Any = receiver.messages.append
        for event in ("seq", "hello", "marker", "created", "updated", "deleted", "note"):
            channel.on_broadcast(event, record)
        subscribed = asyncio.Event()

        def on_status(status: Any, err: Any) -> None:
            if str(status).endswith("SUBSCRIBED"):
                subscribed.set()

        await channel.subscribe(on_status)
        await asyncio.wait_for(subscribed.wait(), 5)
        return receiver

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if name is None or m.get("event") == name]

    async def wait_for(self, count: int, event: str | None = None, within: float = 20.0) -> None:
        await eventually(lambda: len(self.events(event)) >= count, within=within)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.close()


class Gate:
    """A TCP relay on 127.0.0.1 to ``port`` that refuses connections while closed.

    Closing it also cuts the connections it carries.
    """

    def __init__(self, port: int) -> None:
        self.target_port = port
        self.open = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        self._tasks.difference_update(pumps)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        self.open = False
        for writer in list(self._writers):
            writer.close()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
