"""`DevServer`: the local Supabase Realtime stand-in, served in-process by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import warnings
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import uvicorn

with warnings.catch_warnings():
    # uvicorn deprecates its websockets-based protocol, but only that one implements the
    # ASGI denial response that carries Realtime's HTTP error bodies at the handshake.
    warnings.simplefilter("ignore", UserWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    import uvicorn.protocols.websockets.websockets_impl

from ..phoenix import constants as c
from ..phoenix.message import subtopic
from .app import RealtimeApp
from .context import Options, ServerContext
from .faults import Faults
from .jwt import LOCAL_DEV_JWT_SECRET, mint_key
from .limits import Limits

__all__ = ["DevServer"]

logger = logging.getLogger(__name__)

_STARTUP_TIMEOUT_S = 10.0


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the owner of the loop decides."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class DevServer:
    """A Supabase Realtime server for local development and tests.

    It speaks the Realtime websocket protocol (vsn 1.0.0 and 2.0.0) at
    ``/realtime/v1/websocket`` and ``/socket/websocket``, and the REST broadcast API at
    ``/realtime/v1/api/broadcast`` and ``/api/broadcast``. Tokens must be HS256/384/512 JWTs
    signed with ``jwt_secret`` and carrying ``role`` and ``exp``.

    Use it as an async context manager, or call :meth:`start` and :meth:`stop`::

        async with DevServer() as server:
            client = AsyncRealtimeClient(server.ws_url, server.anon_key)

    Args:
        host: loopback address to listen on.
        port: TCP port; 0 picks a free one (read it back from :attr:`port`).
        jwt_secret: HMAC secret for tokens. The default is the Supabase CLI's public local
            development secret: never use it for anything reachable from another machine.
        limits: the enforced limits (Realtime's defaults when omitted).
        idle_timeout: seconds without inbound data before a socket is closed.
        connect_error_delay: seconds before a refused handshake is answered (Realtime: 2).
        join_error_delay: seconds before a join error reply is sent (Realtime: 5).
        ws_ping_interval: seconds between server websocket pings; ``None`` (the default)
            sends none, like Realtime.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        jwt_secret: str = LOCAL_DEV_JWT_SECRET,
        *,
        limits: Limits | None = None,
        idle_timeout: float = 60.0,
        connect_error_delay: float = 0.0,
        join_error_delay: float = 0.0,
        ws_ping_interval: float | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.options = Options(
            jwt_secret=jwt_secret,
            limits=limits or Limits(),
            idle_timeout=idle_timeout,
            connect_error_delay=connect_error_delay,
            join_error_delay=join_error_delay,
        )
        self._ws_ping_interval = ws_ping_interval
        self.context = ServerContext(self.options)
        self.app = RealtimeApp(self.context)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.anon_key = mint_key(jwt_secret, "anon")
        self.service_role_key = mint_key(jwt_secret, "service_role")

    # lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen and serve in a task of the running loop; returns once it accepts sockets."""
        if self._task is not None:
            raise RuntimeError("DevServer is already started")
        limit = self.options.limits.max_frame_bytes
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self._requested_port,
            ws="websockets",
            # Frames over the limit are closed by the app with a reason; the transport's
            # own cap (no reason) only bounds memory.
            ws_max_size=max(2 * limit, limit + 1_048_576),
            ws_ping_interval=self._ws_ping_interval,
            # Phoenix sockets do not compress; compressing would also redo the work of the
            # encode-once fan-out for every subscriber.
            ws_per_message_deflate=False,
            lifespan="off",
            log_level="warning",
            access_log=False,
        )
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        self._port = int(sock.getsockname()[1])
        self._requested_port = self._port  # a restart comes back on the same port
        server = _Server(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="devserver-uvicorn")
        try:
            async with asyncio.timeout(_STARTUP_TIMEOUT_S):
                # uvicorn exposes readiness only as a flag, so it is polled.
                while not server.started and not self._task.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        except TimeoutError:
            await self.stop()
            sock.close()
            raise RuntimeError(f"DevServer did not start within {_STARTUP_TIMEOUT_S:g} s") from None
        if not server.started:
            task, self._task, self._server, self._port = self._task, None, None, None
            sock.close()
            raise RuntimeError(f"DevServer failed to start on {self.host}") from task.exception()
        self._socket = sock
        logger.info("Realtime dev server listening on %s", self.http_url)

    async def stop(
        self, code: int = c.CLOSE_SERVICE_RESTART, reason: str = "server stopping"
    ) -> None:
        """Close every socket with ``code``, stop listening and await every task.

        The default close code, 1012, is what Realtime sends when a node drains: clients
        reconnect. A later :meth:`start` listens on the same port again.
        """
        server, task = self._server, self._task
        if server is None or task is None:
            return
        try:
            await self.faults.close_all(code, reason)
        finally:
            server.should_exit = True
            try:
                await task
            finally:
                self._server = None
                self._task = None
                if self._socket is not None:
                    self._socket.close()
                    self._socket = None
                logger.info("Realtime dev server stopped")

    async def __aenter__(self) -> DevServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # addresses --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("DevServer is not started")
        return self._port

    @property
    def http_url(self) -> str:
        """What Supabase calls ``SUPABASE_URL``, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The Realtime endpoint clients are given, e.g. ``ws://127.0.0.1:54321/realtime/v1``.

        Clients append ``/websocket`` themselves.
        """
        return f"ws://{self.host}:{self.port}/realtime/v1"

    @property
    def jwt_secret(self) -> str:
        return self.options.jwt_secret

    def mint_key(self, role: str = "authenticated", ttl: float = 3600, **claims: Any) -> str:
        """A token signed with this server's secret (see :func:`~.jwt.mint_key`)."""
        return mint_key(self.options.jwt_secret, role, ttl, **claims)

    # state for tests --------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self.context.faults

    @property
    def connections(self) -> int:
        """Open sockets."""
        return len(self.context.connections)

    @property
    def channel_count(self) -> int:
        """Joined channels over all sockets."""
        return sum(1 for _ in self.context.hub.channels())

    def subscribers(self, topic: str, *, private: bool = False) -> int:
        """Channels joined to ``topic`` (subtopic or full topic) in one privacy group."""
        return len(self.context.hub.members((private, subtopic(topic))))

    def presence_state(self, topic: str, *, private: bool = False) -> dict[str, Any]:
        """The server's presence state of ``topic``, as ``presence_state`` carries it."""
        return self.context.hub.presence.state((private, subtopic(topic)))

    # sending ----------------------------------------------------------------------------

    async def emit_change(self, data: dict[str, Any]) -> int:
        """Deliver a database change to every channel whose bindings match it.

        Args:
            data: the ``data`` object of a ``postgres_changes`` frame (PROTOCOL.md §4.3):
                ``schema``, ``table``, ``commit_timestamp``, ``type``, ``columns``,
                ``record`` and/or ``old_record``, ``errors``.

        Returns:
            The number of frames queued (one per matching channel).
        """
        return self.context.hub.emit_change(data)

    async def broadcast(
        self,
        topic: str,
        event: str,
        payload: Any,
        *,
        private: bool = False,
        id: str | None = None,
    ) -> int:
        """A server-originated broadcast to every subscriber of ``topic``, as REST sends it.

        Args:
            topic: the subtopic (``"room1"``); a ``realtime:`` prefix is removed.
            event: the user event.
            payload: a JSON value.
            private: address the private group of the topic.
            id: becomes ``meta.id`` of the delivered message.

        Returns:
            The number of frames queued.
        """
        meta = {"id": id} if id is not None else None
        return self.context.hub.broadcast((private, subtopic(topic)), event, payload, meta=meta)
