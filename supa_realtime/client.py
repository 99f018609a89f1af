"""asyncio client for Supabase Realtime, on ``websockets``.

Theory of operation
-------------------
One :class:`RealtimeClient` owns one websocket at a time and a registry of channels keyed
by topic. Once :meth:`RealtimeClient.connect` has succeeded, a supervisor task owns the
connection for the client's lifetime:

* it reads frames, decodes each one once, hands it to the ``on_message`` hooks and then to
  the channel registered for its topic (one dict lookup);
* beside the reader, a heartbeat task sends a ref'd ``heartbeat`` on a fixed schedule,
  whatever else arrives (PROTOCOL.md §2). A heartbeat still unanswered when the next one
  is due (or after ``heartbeat_timeout``) closes the socket with 1000 "heartbeat timeout";
* when the socket closes for any reason the client did not ask for, including clean 1000
  and 1001 closes from the server, every joined channel becomes errored and the supervisor
  reconnects with jittered backoff, forever unless ``reconnect_backoff`` gives up. On open,
  every errored channel rejoins, with the *current* access token.

Channel pushes never go straight to a dead socket: a channel that is not joined buffers
them (bounded) and flushes them on join. User callbacks may be plain functions or
coroutine functions; an exception in one is logged with its traceback and never stops the
reader. Coroutine callbacks run as tasks the client owns; to keep strict ordering for
asynchronous work, use a plain callback that puts messages on a queue.

Secrets (the API key and access tokens) never appear in our logs or exception messages;
the URL is logged with ``apikey`` redacted and the websockets library's own logger is
wrapped to redact them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.http11 import Response

from .backoff import REJOIN_SCHEDULE, Backoff, BackoffPolicy
from .channel import RealtimeChannel
from .exceptions import (
    AuthorizationError,
    ConfigurationError,
    ConnectionRefused,
    NotConnectedError,
    RemoteProtocolError,
)
from .phoenix import constants as c
from .phoenix.channel import is_stale
from .phoenix.message import Message, full_topic
from .phoenix.refs import RefCounter
from .phoenix.serializer import Serializer, excerpt, serializer_for

__all__ = ["RealtimeClient", "build_url"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Errors that mean "this connection attempt failed" (as opposed to a bug).
CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    InvalidHandshake,
    ConnectionRefused,
)

_REDACTED = "<redacted>"
_FRAME_EXCERPT = re.compile(r"^(> (?:TEXT|BINARY|CONT)) .*(\[\d+ bytes\])$", re.DOTALL)


def build_url(url: str, api_key: str, vsn: str, params: Mapping[str, str] | None = None) -> str:
    """The websocket URL to open.

    ``http(s)://host`` (a Supabase project URL) becomes ``ws(s)://host/realtime/v1/websocket``;
    ``ws(s)://host/realtime/v1`` (what the official clients take) gets ``/websocket``
    appended. ``params``, ``apikey`` and ``vsn`` are added to the query.

    Raises:
        ConfigurationError: the URL is not http(s) or ws(s).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    ws_scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(scheme)
    if ws_scheme is None or not parts.netloc:
        raise ConfigurationError(
            "the Realtime URL must look like https://<project>.supabase.co or "
            "wss://<host>/realtime/v1"
        )
    path = parts.path.rstrip("/")
    if scheme in ("http", "https") and not path:
        path = "/realtime/v1"
    if not path.endswith("/websocket"):
        path += "/websocket"
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("apikey", "vsn")]
    query += [(k, v) for k, v in (params or {}).items() if k not in ("apikey", "vsn")]
    query += [("apikey", api_key), ("vsn", vsn)]
    return urlunsplit((ws_scheme, parts.netloc, path, urlencode(query), ""))


class _Redactor:
    """Replaces known secrets in text: the API key and the most recent access tokens."""

    def __init__(self, api_key: str, keep: int = 8) -> None:
        self._fixed = {api_key, quote(api_key, safe="")}
        self._recent: deque[str] = deque(maxlen=keep)

    def add(self, secret: str | None) -> None:
        if secret and secret not in self._recent:
            self._recent.append(secret)

    def __call__(self, text: str) -> str:
        for secret in (*self._fixed, *self._recent, *(quote(s, safe="") for s in self._recent)):
            if secret in text:
                text = text.replace(secret, _REDACTED)
        return text


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The websockets library logs request lines and headers at DEBUG; redact them."""

    def __init__(self, logger: logging.Logger, redact: _Redactor) -> None:
        super().__init__(logger, {})
        self._redact = redact

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            # Outgoing frame excerpts could hold part of a token (a join's access_token):
            # keep the frame type and size only; our own logger shows frames redacted.
            text = _FRAME_EXCERPT.sub(r"\1 \2", self._redact(text))
            self.logger.log(level, "%s", text, **kwargs)


def _refusal(response: Response, redact: _Redactor) -> ConnectionRefused:
    """The exception for an HTTP answer to the upgrade (PROTOCOL.md §1.3)."""
    body = response.body or b""
    reason = ""
    try:
        data = orjson.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        text = data.get("error") or data.get("message")
        reason = text if isinstance(text, str) else ""
    elif body:
        reason = body[:200].decode(errors="replace").strip()
    reason = redact(reason)
    cls = AuthorizationError if response.status_code in (401, 403) else ConnectionRefused
    return cls(response.status_code, reason)


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed first connection is worth retrying.

    A refused token, a forbidden tenant or an unknown tenant will not fix itself; network
    errors, timeouts, 429 and 5xx answers may. (Reconnects after a successful connection
    retry every failure: the server may be restarting with a new configuration.)
    """
    if isinstance(exc, ConnectionRefused):
        return exc.status not in (401, 403, 404)
    return isinstance(exc, CONNECT_ERRORS)


class RealtimeClient:
    """A connection to Supabase Realtime, with its channels.

    The serializer defaults to vsn ``2.0.0``: broadcasts travel as binary frames (raw
    ``bytes`` payloads are possible), the server puts the ``join_ref`` on its pushes so
    frames from an earlier join are dropped, and it is what current realtime-js uses.
    ``1.0.0`` is supported too.

    Args:
        url: The Supabase project URL (``https://<ref>.supabase.co``) or the Realtime URL
            (``wss://<ref>.supabase.co/realtime/v1``, ``ws://127.0.0.1:4000/socket``).
        api_key: The key sent as ``apikey`` (a JWT, or a key the gateway translates).
        access_token: The user JWT sent with every join; ``None`` lets the server use
            ``api_key``. Change it later with :meth:`set_auth`.
        vsn: ``"2.0.0"`` (default) or ``"1.0.0"``.
        params: Extra query parameters, e.g. ``{"log_level": "info"}``.
        heartbeat_interval: Seconds between heartbeats (fixed schedule).
        heartbeat_timeout: Seconds to wait for a heartbeat reply before reconnecting;
            ``None`` (default) waits until the next heartbeat is due. Capped at the interval.
        timeout: Default timeout, in seconds, of joins, pushes and the connection handshake.
        reconnect_backoff: Delay before reconnect try ``n``; ``None`` to give up. Defaults
            to jittered exponential from 1 s to 10 s, forever.
        rejoin_backoff: Delay before rejoin try ``n`` of a channel whose join failed.
            Defaults to Phoenix's 1, 2, 5, 10, 10, ... s.
        push_buffer_size: Pushes each channel keeps while it is not joined; the oldest is
            dropped (and counted, and logged) beyond that.
        max_message_size: Largest inbound websocket message, in bytes (``None``: no limit).
        close_timeout: Seconds to wait for the server's answer to a close frame.
        headers: Extra HTTP headers for the upgrade request.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        access_token: str | None = None,
        vsn: str = c.VSN_2,
        params: Mapping[str, str] | None = None,
        heartbeat_interval: float = c.HEARTBEAT_INTERVAL_S,
        heartbeat_timeout: float | None = None,
        timeout: float = c.PUSH_TIMEOUT_S,
        reconnect_backoff: BackoffPolicy | None = None,
        rejoin_backoff: BackoffPolicy | None = None,
        push_buffer_size: int = 100,
        max_message_size: int | None = 16 * 2**20,
        close_timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not api_key:
            raise ConfigurationError("api_key is required (the Supabase anon or service key)")
        if vsn not in c.VSNS:
            raise ConfigurationError(f"vsn must be one of {', '.join(c.VSNS)}, not {vsn!r}")
        if heartbeat_interval <= 0 or timeout <= 0:
            raise ConfigurationError("heartbeat_interval and timeout must be positive")
        if push_buffer_size < 0:
            raise ConfigurationError("push_buffer_size must not be negative")
        self._redact = _Redactor(api_key)
        self._redact.add(access_token)
        self._base_url = url
        self._api_key = api_key
        self._url = build_url(url, api_key, vsn, params)
        self._safe_url = build_url(url, _REDACTED, vsn, params).replace(quote(_REDACTED), _REDACTED)
        self._ws_logger = _RedactingLogger(logging.getLogger("websockets.client"), self._redact)
        self._headers = dict(headers or {})
        self.vsn = vsn
        self._serializer: Serializer = serializer_for(vsn, "client")
        self._access_token = access_token
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = min(heartbeat_timeout or heartbeat_interval, heartbeat_interval)
        self.timeout = timeout
        self.reconnect_backoff: BackoffPolicy = reconnect_backoff or Backoff()
        self.rejoin_backoff: BackoffPolicy = rejoin_backoff or REJOIN_SCHEDULE
        self.push_buffer_size = push_buffer_size
        self._max_size = max_message_size
        self._close_timeout = close_timeout

        self._refs = RefCounter()
        self._channels: dict[str, RealtimeChannel] = {}
        self._ws: ClientConnection | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connect_lock = asyncio.Lock()
        self._closing = False
        self._hb_pending: str | None = None
        self.dropped_pushes = 0
        self.reconnects = 0

        self._open_hooks: list[Callable[[], Any]] = []
        self._close_hooks: list[Callable[[int | None, str], Any]] = []
        self._error_hooks: list[Callable[[BaseException], Any]] = []
        self._message_hooks: list[Callable[[Message], Any]] = []
        self._heartbeat_hooks: list[Callable[[str], Any]] = []

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "disconnected"
        return f"<RealtimeClient {self._safe_url} {state} channels={len(self._channels)}>"

    # -- public API ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The websocket URL, with the API key redacted."""
        return self._safe_url

    @property
    def is_connected(self) -> bool:
        """True while a websocket is open."""
        return self._ws is not None

    @property
    def access_token(self) -> str | None:
        """The token sent with joins (``None``: the server uses the API key)."""
        return self._access_token

    async def connect(self, *, retry: bool = False) -> None:
        """Open the websocket; from then on the client reconnects by itself until closed.

        Does nothing if the client is already connected (or reconnecting).

        Args:
            retry: Retry failures that may be transient (network errors, timeouts, HTTP
                429 and 5xx) with ``reconnect_backoff``, instead of raising the first one.

        Raises:
            AuthorizationError: the server refused the key (HTTP 401/403) with its reason.
            ConnectionRefused: the server answered the upgrade with another HTTP error.
            OSError, TimeoutError: the server could not be reached.
        """
        async with self._connect_lock:
            if self._supervisor is not None and not self._supervisor.done():
                return
            self._closing = False
            tries = 0
            while True:
                try:
                    ws = await self._open()
                    break
                except CONNECT_ERRORS as exc:
                    tries += 1
                    delay = self.reconnect_backoff(tries) if retry and is_retryable(exc) else None
                    if delay is None:
                        raise
                    logger.warning(
                        "connecting to %s failed (%s); retrying in %.2f s",
                        self._safe_url,
                        exc,
                        delay,
                    )
                    self._invoke_all(self._error_hooks, "on_error", exc)
                    await asyncio.sleep(delay)
            self._connection_made(ws)
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(ws), name="supa_realtime supervisor"
            )

    async def close(self) -> None:
        """Close the websocket, stop reconnecting, and cancel and await every task.

        Channels end CLOSED (they are not left on the server: the socket close ends them).
        """
        self._closing = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close(c.CLOSE_NORMAL, "client closed")
            logger.info("closed the connection to %s", self._safe_url)
            self._invoke_all(self._close_hooks, "on_close", c.CLOSE_NORMAL, "client closed")
        for channel in list(self._channels.values()):
            channel._on_client_closed()
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)

    async def __aenter__(self) -> RealtimeClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def channel(
        self,
        name: str,
        *,
        broadcast: Mapping[str, Any] | None = None,
        presence: Mapping[str, Any] | None = None,
        private: bool = False,
        **config: Any,
    ) -> RealtimeChannel:
        """The channel for ``name`` (``room1`` or ``realtime:room1``), created if needed.

        Args:
            name: The channel name; ``realtime:`` is prefixed when missing.
            broadcast: ``{"self": bool, "ack": bool}`` and any other broadcast options
                (``replay``, ``replication_ready``), sent as ``config.broadcast``.
            presence: ``{"key": str, "enabled": bool}``; presence is enabled anyway as soon
                as a presence callback is registered.
            private: Join as a private (RLS-authorized) channel.
            **config: Other keys of the join's ``config`` object, sent as given.

        Returns:
            The existing channel for this topic if there is one (its options are kept),
            otherwise a new one.
        """
        topic = full_topic(name)
        existing = self._channels.get(topic)
        if existing is not None and not existing._is_leaving:
            return existing
        channel = RealtimeChannel(
            self,
            topic,
            broadcast=dict(broadcast or {}),
            presence=dict(presence or {}),
            private=private,
            extra=config,
        )
        self._channels[topic] = channel
        return channel

    def get_channels(self) -> list[RealtimeChannel]:
        """The registered channels."""
        return list(self._channels.values())

    async def remove_channel(self, channel: RealtimeChannel) -> None:
        """Leave ``channel`` (if joined) and forget it. The socket stays open."""
        await channel.unsubscribe()
        self._forget(channel)

    async def remove_all_channels(self) -> None:
        """Leave and forget every channel. The socket stays open."""
        channels = list(self._channels.values())
        await asyncio.gather(*(ch.unsubscribe() for ch in channels), return_exceptions=True)
        for channel in channels:
            self._forget(channel)

    async def set_auth(self, token: str | None) -> None:
        """Use ``token`` as the access token from now on.

        It is sent as ``access_token`` to every joined channel right away and is part of
        every later join and rejoin. Calling it again with the same token does nothing.
        """
        if token == self._access_token:
            return
        self._redact.add(token)
        self._access_token = token
        if token is None:
            return
        for channel in list(self._channels.values()):
            if channel.is_joined:
                try:
                    await channel._push_access_token(token)
                except NotConnectedError:
                    logger.debug("%s: token not sent now; the rejoin will carry it", channel.topic)

    def is_current(self, message: Message) -> bool:
        """False when ``message`` belongs to an earlier join of a registered channel.

        The ``on_message`` hooks see every decoded frame; a relay can use this to skip the
        stale ones its channels drop (PROTOCOL.md §7.4). Replies are always current.
        """
        channel = self._channels.get(message.topic)
        if channel is None or message.event == c.PHX_REPLY:
            return True
        return not is_stale(message, channel.join_ref)

    # hooks (each returns the callback, so they work as decorators)

    def on_open(self, callback: F) -> F:
        """Call ``callback()`` every time the websocket opens (after each reconnect too)."""
        self._open_hooks.append(callback)
        return callback

    def on_close(self, callback: F) -> F:
        """Call ``callback(code, reason)`` every time the websocket closes."""
        self._close_hooks.append(callback)
        return callback

    def on_error(self, callback: F) -> F:
        """Call ``callback(exc)`` on failed connection attempts and abnormal closes."""
        self._error_hooks.append(callback)
        return callback

    def on_message(self, callback: F) -> F:
        """Call ``callback(message)`` with every decoded :class:`Message`, before routing.

        If it returns an awaitable, reading pauses until that completes (backpressure).
        """
        self._message_hooks.append(callback)
        return callback

    def on_heartbeat(self, callback: F) -> F:
        """Call ``callback(status)`` with ``"sent"``, ``"ok"`` or ``"timeout"``."""
        self._heartbeat_hooks.append(callback)
        return callback

    # -- connection ------------------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        logger.debug("connecting to %s", self._safe_url)
        try:
            return await ws_connect(
                self._url,
                additional_headers=self._headers or None,
                open_timeout=self.timeout,
                close_timeout=self._close_timeout,
                ping_interval=None,  # our heartbeat is authoritative
                max_size=self._max_size,
                logger=self._ws_logger,
            )
        except InvalidStatus as exc:
            raise _refusal(exc.response, self._redact) from None
        except InvalidURI:
            raise ConfigurationError(f"invalid Realtime URL {self._safe_url}") from None

    def _connection_made(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._hb_pending = None
        logger.info("connected to %s (vsn %s)", self._safe_url, self.vsn)
        self._invoke_all(self._open_hooks, "on_open")
        for channel in list(self._channels.values()):
            channel._on_socket_open()

    def _connection_lost(self, code: int | None, reason: str) -> None:
        self._ws = None
        self._hb_pending = None
        for channel in list(self._channels.values()):
            channel._on_socket_closed()
        self._invoke_all(self._close_hooks, "on_close", code, reason)

    async def _supervise(self, ws: ClientConnection) -> None:
        while True:
            try:
                code, reason = await self._serve(ws)
            except Exception:
                # A bug in our own receive path must not end the client: drop the socket
                # and start over like after any other unexpected close.
                logger.exception("the connection handler failed; reconnecting")
                await ws.close(c.CLOSE_INTERNAL_ERROR, "client error")
                code, reason = c.CLOSE_INTERNAL_ERROR, "client error"
            if self._closing:
                return
            logger.info(
                "connection to %s closed (code %s%s); reconnecting",
                self._safe_url,
                code,
                f", {reason!r}" if reason else "",
            )
            self._connection_lost(code, reason)
            if code not in (c.CLOSE_NORMAL, c.CLOSE_GOING_AWAY):
                self._invoke_all(
                    self._error_hooks,
                    "on_error",
                    NotConnectedError(f"connection closed with code {code} {reason}".rstrip()),
                )
            new_ws = await self._reconnect()
            if new_ws is None:
                return
            ws = new_ws
            self.reconnects += 1
            self._connection_made(ws)

    async def _reconnect(self) -> ClientConnection | None:
        tries = 0
        while True:
            tries += 1
            delay = self.reconnect_backoff(tries)
            if delay is None:
                logger.error(
                    "giving up reconnecting to %s after %d tries", self._safe_url, tries - 1
                )
                self._invoke_all(
                    self._error_hooks,
                    "on_error",
                    NotConnectedError(f"gave up reconnecting after {tries - 1} tries"),
                )
                return None
            logger.info("reconnecting in %.2f s (try %d)", delay, tries)
            await asyncio.sleep(delay)
            try:
                return await self._open()
            except CONNECT_ERRORS as exc:
                logger.warning("reconnect try %d to %s failed: %s", tries, self._safe_url, exc)
                self._invoke_all(self._error_hooks, "on_error", exc)

    async def _serve(self, ws: ClientConnection) -> tuple[int | None, str]:
        """Read until the socket closes; returns its close code and reason."""
        heartbeat = asyncio.get_running_loop().create_task(
            self._heartbeat(ws), name="supa_realtime heartbeat"
        )
        try:
            with contextlib.suppress(ConnectionClosed):
                await self._read(ws)
            return ws.close_code, ws.close_reason or ""
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _read(self, ws: ClientConnection) -> None:
        decode = self._serializer.decode
        channels = self._channels
        hooks = self._message_hooks
        debug = logger.isEnabledFor(logging.DEBUG)
        async for data in ws:
            try:
                msg = decode(data)
            except RemoteProtocolError as exc:
                logger.warning("dropping a frame that cannot be decoded: %s", exc)
                continue
            if debug:
                self._log_frame("<", msg)
            for hook in hooks:
                result = self._invoke_inline(hook, msg)
                if result is not None:
                    await self._await_callback(result, "on_message", hook)
            try:
                if msg.topic == c.PHOENIX_TOPIC:
                    self._on_phoenix(msg)
                    continue
                channel = channels.get(msg.topic)
                if channel is None:
                    if debug:
                        logger.debug("no channel for %s; dropping %s", msg.topic, msg.event)
                    continue
                channel._on_message(msg)
            except Exception:
                logger.exception("failed to handle %s on %s", msg.event, msg.topic)

    def _on_phoenix(self, msg: Message) -> None:
        if msg.event == c.PHX_REPLY and msg.ref is not None and msg.ref == self._hb_pending:
            self._hb_pending = None
            self._invoke_all(self._heartbeat_hooks, "on_heartbeat", "ok")

    async def _heartbeat(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        interval, timeout = self.heartbeat_interval, self.heartbeat_timeout
        next_beat = loop.time() + interval
        try:
            while True:
                await asyncio.sleep(max(0.0, next_beat - loop.time()))
                now = loop.time()
                # Fixed schedule; after a stall (a blocked loop) start afresh, no burst.
                next_beat = next_beat + interval if next_beat + interval > now else now + interval
                ref = self._refs.next()
                self._hb_pending = ref
                await self._send_frame(ws, Message(c.PHOENIX_TOPIC, c.HEARTBEAT, {}, ref=ref))
                self._invoke_all(self._heartbeat_hooks, "on_heartbeat", "sent")
                await asyncio.sleep(max(0.0, next_beat - interval + timeout - loop.time()))
                if self._hb_pending == ref:
                    logger.warning(
                        "heartbeat %s unanswered after %.3g s; reconnecting", ref, timeout
                    )
                    self._invoke_all(self._heartbeat_hooks, "on_heartbeat", "timeout")
                    await ws.close(c.CLOSE_NORMAL, "heartbeat timeout")
                    return
        except ConnectionClosed:
            return

    # -- sending ---------------------------------------------------------------------------

    async def _send(self, msg: Message) -> None:
        """Send on the open socket.

        Raises:
            NotConnectedError: there is no open socket, or it closed while sending.
            LocalProtocolError: the message cannot be encoded.
        """
        ws = self._ws
        if ws is None:
            raise NotConnectedError(f"not connected; cannot send {msg.event} on {msg.topic}")
        try:
            await self._send_frame(ws, msg)
        except ConnectionClosed:
            raise NotConnectedError(
                f"the connection closed while sending {msg.event} on {msg.topic}"
            ) from None

    async def _send_frame(self, ws: ClientConnection, msg: Message) -> None:
        frame = self._serializer.encode(msg)
        if logger.isEnabledFor(logging.DEBUG):
            self._log_frame(">", msg)
        await ws.send(frame)

    def _log_frame(self, direction: str, msg: Message) -> None:
        payload = msg.payload
        if isinstance(payload, dict) and "access_token" in payload:
            payload = {**payload, "access_token": _REDACTED}
        text = f"{msg.topic} {msg.event} ref={msg.ref} join_ref={msg.join_ref} {payload!r}"
        logger.debug("%s %s", direction, self._redact(excerpt(text, 300)))

    def _make_ref(self) -> str:
        return self._refs.next()

    def _forget(self, channel: RealtimeChannel) -> None:
        if self._channels.get(channel.topic) is channel:
            del self._channels[channel.topic]

    def _register(self, channel: RealtimeChannel) -> None:
        current = self._channels.get(channel.topic)
        if current is not None and current is not channel:
            raise ConfigurationError(
                f"another channel object is registered for {channel.topic}; "
                "use client.channel() to get it"
            )
        self._channels[channel.topic] = channel

    # -- tasks and callbacks ---------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("task %s failed", task.get_name(), exc_info=exc)

    def _invoke_inline(self, hook: Callable[[Message], Any], msg: Message) -> Awaitable[Any] | None:
        """Call an ``on_message`` hook; return what it returned if that must be awaited.

        Unlike other callbacks, an awaitable from an ``on_message`` hook is awaited before
        the next frame is read: a relay uses it to push back on a fast server.
        """
        try:
            result = hook(msg)
        except Exception:
            logger.exception("on_message callback %r raised", hook)
            return None
        return result if result is not None and inspect.isawaitable(result) else None

    def _invoke(self, callback: Callable[..., Any], what: str, *args: Any) -> None:
        """Call a user callback; log what it raises; run what it returns if awaitable."""
        try:
            result = callback(*args)
        except Exception:
            logger.exception("%s callback %r raised", what, callback)
            return
        if inspect.isawaitable(result):
            self._spawn(self._await_callback(result, what, callback), f"supa_realtime {what}")

    async def _await_callback(
        self, awaitable: Awaitable[Any], what: str, callback: Callable[..., Any]
    ) -> None:
        try:
            await awaitable
        except Exception:
            logger.exception("%s callback %r raised", what, callback)

    def _invoke_all(self, callbacks: Iterable[Callable[..., Any]], what: str, *args: Any) -> None:
        for callback in callbacks:
            self._invoke(callback, what, *args)
