"""One websocket of the local Realtime server: handshake, frame loop, channel events.

Theory of operation
-------------------
The ASGI coroutine that runs :meth:`Connection.run` is the *reader*: it does the
handshake (PROTOCOL.md §1.2, §1.3), then decodes each inbound frame and handles it at once.
Everything sent goes through one queue drained by the connection's *writer* task, so frames
leave in the order they were queued and a fan-out never waits on a slow socket. A close is
queued like a frame; the writer sends it and stops.

Channel replies and pushes follow the ref placement of §1.6. Join errors may be held back
(``join_error_delay``) with ``call_later`` so the socket keeps serving other frames, as the
Realtime channel process does. Malformed frames are logged (redacted) and dropped; the
socket stays open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from ..exceptions import RemoteProtocolError
from ..phoenix import constants as c
from ..phoenix.inbound import frame_size, redact
from ..phoenix.join import (
    SUBSCRIBED_MESSAGE,
    TOPIC_NAME_REQUIRED,
    TRACK_NOT_MAP,
    JoinConfig,
    parse_bindings,
    refreshed_token,
    unmatched_reply,
)
from ..phoenix.message import Message, reply
from ..phoenix.serializer import Serializer, excerpt, serializer_for
from .channel import ServerChannel
from .context import ServerContext
from .jwt import TokenRejection, check_token
from .limits import (
    CHANNEL_LIMIT_REASON,
    PAYLOAD_SIZE_EXCEEDED,
    PRESENCE_RATE_MESSAGE,
    TOO_MANY_USERS,
    TRACK_SIZE_MESSAGE,
    PresenceRateLimiter,
    payload_size,
)

__all__ = ["Connection", "redact"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# Join errors after which Realtime also closes the socket with 1001 (PROTOCOL.md §3.5).
_CLOSING_JOIN_ERRORS = ("ClientJoinRateLimitReached:", "TenantNotFound:")
_KIND_3 = bytes([c.KIND_USER_BROADCAST_PUSH])


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


_Item = tuple[str | bytes, bool] | _Close


class Connection:
    """One client socket, from upgrade to disconnect."""

    def __init__(self, context: ServerContext, scope: Scope, receive: Receive, send: Send) -> None:
        self.context = context
        self.scope = scope
        self._receive = receive
        self._send = send
        self.serializer: Serializer | None = None
        self.vsn = c.VSN_1
        self.token = ""
        self.channels: dict[str, ServerChannel] = {}
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._timers: set[asyncio.TimerHandle] = set()
        client = scope.get("client")
        self.peer = f"{client[0]}:{client[1]}" if client else "?"

    # handshake --------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the socket until it is closed by either side."""
        event = await self._receive()
        if event["type"] != "websocket.connect":
            return
        if not await self._handshake():
            return
        self.context.connections.add(self)
        self._writer = asyncio.create_task(self._write_loop(), name=f"devserver-writer-{self.peer}")
        try:
            await self._read_loop()
        finally:
            self.context.connections.discard(self)
            self._drop_all_channels()
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            if not self._writer.done():
                self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                if not self._writer.cancelled():
                    raise
            logger.info("socket %s closed", self.peer)

    async def _handshake(self) -> bool:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope["headers"]
        }
        vsn = query.get("vsn", [None])[0]
        try:
            self.serializer = serializer_for(vsn, "server")
        except RemoteProtocolError:
            logger.info("socket %s refused: unsupported vsn", self.peer)
            await self._deny(403, None)
            return False
        self.vsn = self.serializer.vsn
        token = headers.get("x-api-key") or query.get("apikey", [None])[0]
        options = self.context.options
        refusal: tuple[int, str] | None = self.context.faults.take_handshake_refusal()
        if refusal is None:
            if not token:
                refusal = (401, "API key is missing")
            else:
                checked = check_token(token, options.jwt_secret)
                if isinstance(checked, TokenRejection):
                    refusal = (401, checked.handshake)
                elif (
                    options.limits.max_concurrent_users is not None
                    and len(self.context.connections) >= options.limits.max_concurrent_users
                ):
                    refusal = (429, TOO_MANY_USERS)
        if refusal is not None:
            logger.info("socket %s refused: %s %s", self.peer, refusal[0], refusal[1])
            if options.connect_error_delay > 0:
                await asyncio.sleep(options.connect_error_delay)
            await self._deny(refusal[0], refusal[1])
            return False
        assert token is not None
        self.token = token
        await self._send({"type": "websocket.accept"})
        logger.info("socket %s connected (vsn %s)", self.peer, self.vsn)
        return True

    async def _deny(self, status: int, error: str | None) -> None:
        body = b"" if error is None else orjson.dumps({"error": error})
        headers = [(b"content-type", b"application/json")] if error is not None else []
        # Both messages back to back: the websockets-based server reads the body when the
        # upgrade handler resumes.
        await self._send(
            {"type": "websocket.http.response.start", "status": status, "headers": headers}
        )
        await self._send({"type": "websocket.http.response.body", "body": body})

    # reading ----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        idle = self.context.options.idle_timeout
        while True:
            try:
                async with asyncio.timeout(idle):
                    event = await self._receive()
            except TimeoutError:
                logger.info("socket %s idle for %g s, closing", self.peer, idle)
                self._queue_close(c.CLOSE_NORMAL, "idle timeout")
                continue
            kind = event["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            data: str | bytes | None = event.get("text")
            if data is None:
                data = event.get("bytes")
            if data is None:
                continue
            if self._closing:
                continue
            max_bytes = self.context.options.limits.max_frame_bytes
            size = frame_size(data, max_bytes)
            if size > max_bytes:
                logger.info(
                    "socket %s sent %d bytes (limit %d), closing", self.peer, size, max_bytes
                )
                self._queue_close(
                    c.CLOSE_MESSAGE_TOO_BIG, f"frame of {size} bytes exceeds {max_bytes}"
                )
                continue
            self._handle_frame(data)

    def _handle_frame(self, data: str | bytes) -> None:
        assert self.serializer is not None
        try:
            if isinstance(data, bytes) and data[:1] != _KIND_3:
                raise RemoteProtocolError(
                    f"binary frame kind {data[:1].hex() or 'none'} is not a client kind; "
                    "clients send kind 3 (user broadcast push)"
                )
            message = self.serializer.decode(data)
        except RemoteProtocolError as exc:
            logger.warning("socket %s: dropped a malformed frame: %s", self.peer, redact(str(exc)))
            return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("< %s %s", self.peer, redact(excerpt(data)))
        try:
            self._dispatch(message)
        except Exception:
            logger.exception(
                "socket %s: failed to handle %r on %r", self.peer, message.event, message.topic
            )
            channel = self.channels.get(message.topic)
            if channel is not None:  # the channel "crashed", as a Realtime channel process would
                self.crash_channel(channel)

    def _dispatch(self, message: Message) -> None:
        if message.topic == c.PHOENIX_TOPIC and message.event == c.HEARTBEAT:
            if not self.context.faults.withhold_heartbeats:
                self.queue_message(reply(message, c.STATUS_OK, {}))
            return
        if message.event == c.PHX_JOIN:
            self._on_join(message)
            return
        channel = self.channels.get(message.topic)
        if channel is None:
            if message.event == c.PHX_LEAVE:
                self.queue_message(reply(message, c.STATUS_OK, {}))
            else:
                self._unmatched(message)
            return
        handler = _HANDLERS.get(message.event)
        if handler is None:
            logger.debug(
                "socket %s: ignored event %r on %r", self.peer, message.event, message.topic
            )
            return
        handler(self, channel, message)

    # writing ----------------------------------------------------------------------------

    def queue_frame(self, frame: str | bytes, is_reply: bool = False) -> bool:
        """Queue an encoded frame; ``False`` if the socket is closing."""
        if self._closing:
            return False
        self._queue.put_nowait((frame, is_reply))
        return True

    def queue_message(self, message: Message) -> bool:
        assert self.serializer is not None
        frame = self.context.hub.encode(self.vsn, message)
        if frame is None:
            return False
        return self.queue_frame(frame, message.event == c.PHX_REPLY)

    def _later(self, delay: float, message: Message, *, then_close: bool = False) -> None:
        """Queue ``message`` after ``delay`` s; ``then_close`` closes the socket with 1001."""

        def send() -> None:
            self.queue_message(message)
            if then_close:
                self._queue_close(c.CLOSE_GOING_AWAY, "")

        if delay <= 0:
            send()
            return

        def fire() -> None:
            self._timers.discard(handle)
            send()

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)

    def _queue_close(self, code: int, reason: str) -> None:
        if not self._closing:
            self._closing = True
            self._queue.put_nowait(_Close(code, reason))

    async def close(self, code: int = c.CLOSE_NORMAL, reason: str = "") -> None:
        """Close the socket after the frames already queued; returns once it is sent."""
        self._queue_close(code, reason)
        if self._writer is not None:
            await asyncio.wait({self._writer})

    async def _write_loop(self) -> None:
        faults = self.context.faults
        debug = logger.isEnabledFor(logging.DEBUG)
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, _Close):
                    await self._send(
                        {"type": "websocket.close", "code": item.code, "reason": item.reason}
                    )
                    return
                frame, is_reply = item
                if is_reply and faults.reply_delay > 0:
                    await asyncio.sleep(faults.reply_delay)
                if debug:
                    logger.debug("> %s %s", self.peer, redact(excerpt(frame)))
                if isinstance(frame, str):
                    await self._send({"type": "websocket.send", "text": frame})
                else:
                    await self._send({"type": "websocket.send", "bytes": frame})
            except (OSError, RuntimeError) as exc:
                # OSError: uvicorn's ClientDisconnected. RuntimeError: uvicorn refuses sends
                # once the peer's close was read, which can win the race with our reader.
                logger.debug("socket %s: send failed (%s)", self.peer, exc)
                self._closing = True
                return

    # channel events ---------------------------------------------------------------------

    def _unmatched(self, message: Message) -> None:
        self.queue_message(unmatched_reply(message))

    def _join_error(self, message: Message, reason: str) -> None:
        logger.info("socket %s: join of %r refused: %s", self.peer, message.topic, reason)
        self._later(
            self.context.options.join_error_delay,
            reply(message, c.STATUS_ERROR, {"reason": reason}),
            then_close=reason.startswith(_CLOSING_JOIN_ERRORS),
        )

    def _on_join(self, message: Message) -> None:
        topic = message.topic
        if not topic.startswith(c.TOPIC_PREFIX):
            self._unmatched(message)
            return
        old = self.channels.get(topic)
        if old is not None:
            self._close_channel(old)
        options = self.context.options
        if topic == c.TOPIC_PREFIX:
            self._join_error(message, TOPIC_NAME_REQUIRED)
            return
        refusal = self.context.faults.take_join_refusal(topic)
        if refusal is not None:
            self._join_error(message, refusal)
            return
        if len(self.channels) >= options.limits.max_channels_per_client:
            self._join_error(message, CHANNEL_LIMIT_REASON)
            return
        config = JoinConfig.parse(message.payload)
        token = config.access_token or self.token
        checked = check_token(token, options.jwt_secret)
        if isinstance(checked, TokenRejection):
            self._join_error(message, checked.join_reason)
            return
        channel = ServerChannel(
            conn=self,
            topic=topic,
            join_ref=message.join_ref,
            config=config,
            token=token,
            limiter=PresenceRateLimiter(
                options.limits.presence_max_calls, options.limits.presence_window_s
            ),
        )
        entries: list[Any] = []
        binding_error: str | None = None
        if config.postgres_changes:
            bindings, entries, binding_error = parse_bindings(config.postgres_changes)
            channel.bindings.extend(bindings)
        self.queue_message(reply(message, c.STATUS_OK, {"postgres_changes": entries}))
        self.channels[topic] = channel
        self.context.hub.add(channel)
        self._schedule_expiry(channel, checked)
        logger.info("socket %s joined %r", self.peer, topic)
        if binding_error is not None:
            self.queue_message(
                channel.system(c.EXTENSION_POSTGRES_CHANGES, c.STATUS_ERROR, binding_error)
            )
        elif channel.bindings:
            self.queue_message(
                channel.system(c.EXTENSION_POSTGRES_CHANGES, c.STATUS_OK, SUBSCRIBED_MESSAGE)
            )
        if config.presence_enabled:
            self.queue_message(
                channel.push(c.PRESENCE_STATE, self.context.hub.presence_state(channel))
            )

    def _schedule_expiry(self, channel: ServerChannel, claims: dict[str, Any]) -> None:
        if channel.expiry is not None:
            channel.expiry.cancel()
            self._timers.discard(channel.expiry)
        delay = max(0.0, float(claims["exp"]) - time.time())
        loop = asyncio.get_running_loop()

        def expire() -> None:
            self._timers.discard(handle)
            if self.channels.get(channel.topic) is channel:
                ago = max(0, int(time.time() - float(claims["exp"])))
                self._stop_channel(channel, f"Token has expired {ago} seconds ago")

        handle = loop.call_later(delay, expire)
        channel.expiry = handle
        self._timers.add(handle)

    def _on_leave(self, channel: ServerChannel, message: Message) -> None:
        self.queue_message(reply(message, c.STATUS_OK, {}))
        self._close_channel(channel)
        logger.info("socket %s left %r", self.peer, channel.topic)

    def _close_channel(self, channel: ServerChannel) -> None:
        """``phx_close`` to the client, then forget the channel."""
        self.queue_message(channel.close_message())
        self._drop_channel(channel)

    def crash_channel(self, channel: ServerChannel) -> None:
        """``phx_error`` to the client (the channel process died), then forget the channel."""
        logger.info("socket %s: channel %r errored", self.peer, channel.topic)
        self.queue_message(channel.close_message(c.PHX_ERROR))
        self._drop_channel(channel)

    def _stop_channel(self, channel: ServerChannel, text: str) -> None:
        """A channel-level ``system`` error, then ``phx_close`` (PROTOCOL.md §3.7)."""
        logger.info("socket %s: channel %r stopped: %s", self.peer, channel.topic, text)
        self.queue_message(channel.system(c.EXTENSION_SYSTEM, c.STATUS_ERROR, text))
        self._close_channel(channel)

    def _drop_channel(self, channel: ServerChannel) -> None:
        if self.channels.get(channel.topic) is channel:
            del self.channels[channel.topic]
        if channel.expiry is not None:
            channel.expiry.cancel()
            self._timers.discard(channel.expiry)
        self.context.hub.remove(channel)

    def _drop_all_channels(self) -> None:
        for channel in list(self.channels.values()):
            self._drop_channel(channel)

    def _on_broadcast(self, channel: ServerChannel, message: Message) -> None:
        ack = channel.config.ack
        limit = self.context.options.limits.max_payload_bytes
        if payload_size(message.payload) > limit:
            logger.info(
                "socket %s: broadcast on %r over the payload limit", self.peer, channel.topic
            )
            if ack:
                self.queue_message(reply(message, c.STATUS_ERROR, PAYLOAD_SIZE_EXCEEDED))
            return
        if message.binary:
            body = message.payload
            out = Message(
                channel.topic,
                c.BROADCAST,
                {"event": body["event"], "payload": body["payload"], "type": "broadcast"},
                binary=True,
            )
        else:
            out = Message(channel.topic, c.BROADCAST, message.payload)
        exclude = None if channel.config.self_broadcast else channel
        self.context.hub.fanout(channel.group, out, exclude=exclude)
        if ack:
            self.queue_message(reply(message, c.STATUS_OK, {}))

    def _on_presence(self, channel: ServerChannel, message: Message) -> None:
        if not channel.limiter.allow():
            self._stop_channel(channel, PRESENCE_RATE_MESSAGE)
            return
        payload = message.payload if isinstance(message.payload, dict) else {}
        event = payload.get("event")
        if event is None:
            self.queue_message(reply(message, c.STATUS_OK, {}))
            return
        action = str(event).lower()
        hub = self.context.hub
        if action == c.PRESENCE_TRACK:
            meta = payload.get("payload")
            if not isinstance(meta, dict):
                self.queue_message(reply(message, c.STATUS_ERROR, {"reason": TRACK_NOT_MAP}))
                return
            if payload_size(meta) > self.context.options.limits.max_payload_bytes:
                self._stop_channel(channel, TRACK_SIZE_MESSAGE)
                return
            self.queue_message(reply(message, c.STATUS_OK, {}))
            hub.track(channel, meta)
        elif action == c.PRESENCE_UNTRACK:
            self.queue_message(reply(message, c.STATUS_OK, {}))
            hub.untrack(channel)
        else:
            self.queue_message(reply(message, c.STATUS_ERROR, {}))

    def _on_access_token(self, channel: ServerChannel, message: Message) -> None:
        token = refreshed_token(message.payload, channel.token)
        if token is None:
            return
        checked = check_token(token, self.context.options.jwt_secret)
        if isinstance(checked, TokenRejection):
            self._stop_channel(channel, checked.detail)
            return
        channel.token = token
        self._schedule_expiry(channel, checked)
        if channel.bindings:
            self.queue_message(
                channel.system(c.EXTENSION_POSTGRES_CHANGES, c.STATUS_OK, SUBSCRIBED_MESSAGE)
            )


_HANDLERS: dict[str, Callable[[Connection, ServerChannel, Message], None]] = {
    c.PHX_LEAVE: Connection._on_leave,
    c.BROADCAST: Connection._on_broadcast,
    c.PRESENCE: Connection._on_presence,
    c.ACCESS_TOKEN: Connection._on_access_token,
}
