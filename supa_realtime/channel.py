"""The user-facing channel: bindings, subscribe, pushes with replies, presence, broadcast.

Theory of operation
-------------------
A :class:`RealtimeChannel` drives the pure state table of
:mod:`supa_realtime.phoenix.channel` and never touches the socket itself: it asks its
:class:`~supa_realtime.client.RealtimeClient` to send. Everything it receives arrives
through :meth:`RealtimeChannel._on_message`, synchronously, from the client's reader.

* Replies are matched by ``ref``; the reply to the current ``phx_join`` drives the join.
  Other frames from an earlier join of this channel are dropped (``join_ref``, §7.4).
* A join answered with an error, a join timeout and ``phx_error`` leave the channel
  ERRORED and schedule a rejoin with the client's ``rejoin_backoff``; the socket closing
  leaves it ERRORED until the socket reopens. ``phx_close`` ends it for good.
* Every join builds its payload afresh, so a rejoin carries the client's current access
  token and the current bindings.
* postgres_changes bindings are matched to the server's ids index-wise, as realtime-js
  does; a mismatch is a CHANNEL_ERROR and the channel leaves.
* ``system`` messages go to ``on_system`` callbacks only: a postgres_changes error there
  does not rejoin the channel (the server keeps it open).
"""

# ``timeout`` arguments are Phoenix push timeouts (how long to wait for the server's reply),
# part of the protocol's vocabulary, not a cancellation scope.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

import orjson

from . import rest
from .events import PostgresChange
from .exceptions import (
    ConfigurationError,
    JoinError,
    JoinTimeout,
    LocalProtocolError,
    NotConnectedError,
    PushError,
    PushTimeout,
    RealtimeError,
    RemoteProtocolError,
)
from .phoenix import constants as c
from .phoenix.channel import ChannelEvent, ChannelMachine, ChannelState, is_stale
from .phoenix.message import Message
from .phoenix.presence import Meta, PresenceJoin, PresenceState, PresenceSync, SyncOutcome

if TYPE_CHECKING:
    from .client import RealtimeClient

__all__ = ["ChannelState", "PostgresChange", "RealtimeChannel", "SubscribeCallback"]

logger = logging.getLogger(__name__)

SubscribeCallback = Callable[[str, Exception | None], Any]

_PG_KEYS = ("event", "schema", "table", "filter")
_BYTES = (bytes, bytearray, memoryview)


@dataclass(slots=True)
class _PgBinding:
    spec: dict[str, Any]
    event: str
    callback: Callable[[PostgresChange], Any]
    id: int | None = None


@dataclass(slots=True)
class _Push:
    event: str
    payload: Any
    binary: bool
    future: asyncio.Future[Message] | None
    ref: str | None = field(default=None)


def _same(server: Any, client: Any, key: str) -> bool:
    a, b = server.get(key), client.get(key)
    if key == "event" and isinstance(a, str) and isinstance(b, str):
        return a.upper() == b.upper()
    return (a or None) == (b or None)


class RealtimeChannel:
    """One topic on a :class:`~supa_realtime.client.RealtimeClient`.

    Get one with :meth:`RealtimeClient.channel`; register callbacks; then
    ``await channel.subscribe()``. Registration methods return the channel, so calls chain.
    """

    def __init__(
        self,
        client: RealtimeClient,
        topic: str,
        *,
        broadcast: dict[str, Any],
        presence: dict[str, Any],
        private: bool,
        extra: dict[str, Any],
    ) -> None:
        self.topic = topic
        self._client = client
        self._broadcast_config = broadcast
        self._presence_config = presence
        self._private = private
        self._extra_config = extra
        self._machine = ChannelMachine()
        self._broadcast_bindings: list[tuple[str, Callable[[dict[str, Any]], Any]]] = []
        self._pg_bindings: list[_PgBinding] = []
        self._pg_sent: list[dict[str, Any]] = []
        self._system_callbacks: list[Callable[[dict[str, Any]], Any]] = []
        self._presence_sync_callbacks: list[Callable[[], Any]] = []
        self._presence_join_callbacks: list[Callable[[str, list[Meta], list[Meta]], Any]] = []
        self._presence_leave_callbacks: list[Callable[[str, list[Meta], list[Meta]], Any]] = []
        self._presence = PresenceSync()
        self._subscribe_callback: SubscribeCallback | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._buffer: deque[_Push] = deque()
        self._replies: dict[str, asyncio.Future[Message]] = {}
        self._join_timer: asyncio.TimerHandle | None = None
        self._rejoin_task: asyncio.Task[Any] | None = None
        self._rejoin_tries = 0
        self._tracked: Any = None
        self._join_token: str | None = None
        self.dropped_pushes = 0

    def __repr__(self) -> str:
        return f"<RealtimeChannel {self.topic} {self.state.value} join_ref={self.join_ref}>"

    # -- state -----------------------------------------------------------------------------

    @property
    def state(self) -> ChannelState:
        return self._machine.state

    @property
    def join_ref(self) -> str | None:
        """The ref of the current join (``None`` before the first)."""
        return self._machine.join_ref

    @property
    def is_joined(self) -> bool:
        return self._machine.state is ChannelState.JOINED

    @property
    def _is_leaving(self) -> bool:
        return self._machine.state is ChannelState.LEAVING

    @property
    def _ack(self) -> bool:
        return bool(self._broadcast_config.get("ack"))

    @property
    def _presence_wanted(self) -> bool:
        return bool(
            self._presence_config.get("enabled")
            or self._presence_sync_callbacks
            or self._presence_join_callbacks
            or self._presence_leave_callbacks
        )

    # -- bindings --------------------------------------------------------------------------

    def on_broadcast(self, event: str, callback: Callable[[dict[str, Any]], Any]) -> Self:
        """Call ``callback(message)`` for broadcasts of ``event`` (``"*"``: every event).

        Events match case-insensitively. ``message`` is the broadcast body,
        ``{"type": "broadcast", "event": ..., "payload": ...[, "meta": {...}]}``; under
        vsn 2.0.0 ``payload`` may be ``bytes``.
        """
        self._broadcast_bindings.append((event.lower(), callback))
        return self

    def on_postgres_changes(
        self,
        event: str,
        callback: Callable[[PostgresChange], Any],
        *,
        schema: str = "public",
        table: str | None = None,
        filter: str | None = None,
        select: list[str] | None = None,
    ) -> Self:
        """Call ``callback(change)`` for row changes (PROTOCOL.md §4).

        Args:
            event: ``"INSERT"``, ``"UPDATE"``, ``"DELETE"`` or ``"*"``.
            callback: Receives a :class:`~supa_realtime.events.PostgresChange` (the raw frame
                is in ``change.raw``, the wire ``data`` in ``change.raw.payload["data"]``).
            schema: The schema (``"*"`` for every schema).
            table: The table (``None`` or ``"*"`` for every table of the schema).
            filter: A server-side filter such as ``"id=eq.1"``.
            select: Columns to receive (plus the primary key); new servers only.

        Bindings are sent with the next join; one added while joined takes effect when the
        channel rejoins.
        """
        event = event.upper()
        if event not in ("*", "INSERT", "UPDATE", "DELETE"):
            raise ConfigurationError(
                f"postgres_changes event must be INSERT, UPDATE, DELETE or *, not {event!r}"
            )
        spec: dict[str, Any] = {"event": event, "schema": schema}
        if table is not None:
            spec["table"] = table
        if filter:
            spec["filter"] = filter
        if select is not None:
            spec["select"] = list(select)
        if self._machine.state is not ChannelState.CLOSED:
            logger.warning("%s: postgres_changes binding takes effect at the next join", self.topic)
        self._pg_bindings.append(_PgBinding(spec, event, callback))
        return self

    def on_system(self, callback: Callable[[dict[str, Any]], Any]) -> Self:
        """Call ``callback(payload)`` for ``system`` messages (PROTOCOL.md §3.7)."""
        self._system_callbacks.append(callback)
        return self

    def on_presence_sync(self, callback: Callable[[], Any]) -> Self:
        """Call ``callback()`` after each presence state or diff has been applied."""
        self._presence_sync_callbacks.append(callback)
        return self

    def on_presence_join(self, callback: Callable[[str, list[Meta], list[Meta]], Any]) -> Self:
        """Call ``callback(key, current_metas, new_metas)`` when metas join under ``key``."""
        self._presence_join_callbacks.append(callback)
        return self

    def on_presence_leave(self, callback: Callable[[str, list[Meta], list[Meta]], Any]) -> Self:
        """Call ``callback(key, remaining_metas, left_metas)`` when metas leave ``key``."""
        self._presence_leave_callbacks.append(callback)
        return self

    def presence_state(self) -> PresenceState:
        """The current presence state, ``{key: [meta, ...]}`` (metas keep ``phx_ref``)."""
        return {key: list(metas) for key, metas in self._presence.state.items()}

    # -- subscribe / unsubscribe -----------------------------------------------------------

    async def subscribe(
        self, callback: SubscribeCallback | None = None, *, timeout: float | None = None
    ) -> Self:
        """Join the channel and wait for the server's answer.

        ``callback(status, error)`` is called now and on every later change:
        ``"SUBSCRIBED"``, ``"CHANNEL_ERROR"`` (with the error), ``"TIMED_OUT"`` or
        ``"CLOSED"``. Connects the client first if it never connected.

        A refused or unanswered join raises, and the channel keeps retrying in the
        background on the client's rejoin schedule (``unsubscribe()`` stops it).

        Raises:
            JoinError: the server refused the join; ``reason`` is its text.
            JoinTimeout: no answer within ``timeout`` (default: the client's timeout).
            RealtimeError: the channel is already subscribed.
        """
        if self._machine.state is not ChannelState.CLOSED:
            raise RealtimeError(f"{self.topic} is already {self._machine.state.value}")
        client = self._client
        client._register(self)
        timeout = client.timeout if timeout is None else timeout
        self._subscribe_callback = callback
        if client._supervisor is None or client._supervisor.done():
            await client.connect()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._join(ChannelEvent.JOIN)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            if self._waiter is waiter:
                self._waiter = None
            raise JoinTimeout(self.topic, timeout) from None
        return self

    async def unsubscribe(self, timeout: float | None = None) -> None:
        """Leave the channel (waiting for the server's answer when connected).

        The channel ends CLOSED, stops rejoining, and is removed from its client; buffered
        pushes fail with :class:`~supa_realtime.exceptions.NotConnectedError`.
        """
        previous = self._machine.state
        if previous is ChannelState.CLOSED:
            self._client._forget(self)
            return
        if previous is ChannelState.LEAVING:
            return
        self._machine.handle(ChannelEvent.LEAVE)
        self._cancel_timers()
        self._settle(JoinError(self.topic, "unsubscribed before the join completed"))
        if self._client.is_connected:
            try:
                await self._request(c.PHX_LEAVE, {}, timeout=timeout, direct=True)
            except (PushTimeout, PushError, NotConnectedError) as exc:
                logger.debug("%s: leave not confirmed (%s)", self.topic, exc)
        if self._machine.state is ChannelState.LEAVING:
            self._machine.handle(ChannelEvent.LEAVE_OK)
            logger.info("left %s", self.topic)
            self._finish_closed()

    # -- pushes ----------------------------------------------------------------------------

    async def send_broadcast(
        self, event: str, payload: Any, *, timeout: float | None = None
    ) -> None:
        """Broadcast ``event`` with ``payload`` to the channel's subscribers.

        Under vsn 2.0.0 this is a binary frame (kind 3) as realtime-js sends, and
        ``payload`` may be ``bytes``. With ``broadcast={"ack": True}`` it waits for the
        server's acknowledgement. While the channel is not joined the push is buffered.

        Raises:
            PushTimeout: ``ack`` is on and no acknowledgement came within ``timeout``.
            PushError: the server refused it (e.g. ``payload_size_exceeded``), or the push
                was dropped from a full buffer.
            LocalProtocolError: ``payload`` cannot be sent (bytes under vsn 1.0.0, ...).
        """
        binary = self._client.vsn == c.VSN_2
        if isinstance(payload, _BYTES) and not binary:
            raise LocalProtocolError(
                f"bytes payloads need vsn {c.VSN_2}; this client uses {self._client.vsn}"
            )
        body = {"type": "broadcast", "event": event, "payload": payload}
        if self._ack:
            await self._request(c.BROADCAST, body, timeout=timeout, binary=binary)
        else:
            await self._fire(c.BROADCAST, body, binary=binary)

    async def http_send(
        self, event: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> None:
        """Broadcast over the REST API (``POST .../api/broadcast``), joined or not.

        REST has no sender exclusion: every subscriber receives it, this channel included.
        The request is authorized with the client's API key.

        Raises:
            BroadcastRejected: the server answered with an HTTP error (its subclasses name
                401/403, 422 and 429).
            BroadcastError: the server could not be reached.
        """
        message = rest.RestMessage(self.topic, event, orjson.dumps(payload), self._private)
        client = self._client
        await rest.send(
            client._base_url,
            client._api_key,
            [message],
            timeout=client.timeout if timeout is None else timeout,
        )

    async def track(self, payload: dict[str, Any], *, timeout: float | None = None) -> None:
        """Track this client's presence under the channel's presence key.

        The payload is tracked again automatically after every rejoin.
        """
        self._tracked = payload
        await self._request(
            c.PRESENCE,
            {"type": "presence", "event": c.PRESENCE_TRACK, "payload": payload},
            timeout=timeout,
        )

    async def untrack(self, *, timeout: float | None = None) -> None:
        """Stop tracking this client's presence."""
        self._tracked = None
        await self._request(
            c.PRESENCE, {"type": "presence", "event": c.PRESENCE_UNTRACK}, timeout=timeout
        )

    async def push(self, event: str, payload: Any, *, timeout: float | None = None) -> Any:
        """Push any event and return the ``response`` of the server's ``ok`` reply.

        Raises:
            PushError: the reply's status is ``error``.
            PushTimeout: no reply within ``timeout``.
        """
        reply = await self._request(event, payload, timeout=timeout)
        return reply.response

    async def _push_access_token(self, token: str) -> None:
        await self._fire(c.ACCESS_TOKEN, {"access_token": token})

    async def _fire(self, event: str, payload: Any, *, binary: bool = False) -> None:
        """A push that expects no reply: sent now if joined, else buffered."""
        push = _Push(event, payload, binary, None)
        await self._send_or_enqueue(push)

    async def _send_or_enqueue(self, push: _Push) -> None:
        if self._can_send():
            try:
                await self._send_push(push)
                return
            except NotConnectedError:
                pass  # the socket just closed: keep the push for the rejoin
        self._enqueue(push)

    async def _request(
        self,
        event: str,
        payload: Any,
        *,
        timeout: float | None,
        binary: bool = False,
        direct: bool = False,
    ) -> Message:
        """A push that waits for its reply; ``direct`` sends even when not joined."""
        timeout = self._client.timeout if timeout is None else timeout
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        push = _Push(event, payload, binary, future)
        try:
            if direct:
                await self._send_push(push)
            else:
                await self._send_or_enqueue(push)
            try:
                reply = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise PushTimeout(self.topic, event, timeout) from None
        finally:
            if push.ref is not None:
                self._replies.pop(push.ref, None)
            with contextlib.suppress(ValueError):
                self._buffer.remove(push)
        if reply.status != c.STATUS_OK:
            raise PushError(self.topic, event, reply.response)
        return reply

    def _can_send(self) -> bool:
        return (
            self._machine.state is ChannelState.JOINED
            and self._client.is_connected
            and not self._buffer
        )

    async def _send_push(self, push: _Push) -> None:
        ref = self._client._make_ref()
        push.ref = ref
        if push.future is not None:
            self._replies[ref] = push.future
        msg = Message(
            self.topic,
            push.event,
            push.payload,
            ref=ref,
            join_ref=self.join_ref,
            binary=push.binary,
        )
        try:
            await self._client._send(msg)
        except BaseException:
            self._replies.pop(ref, None)
            push.ref = None
            raise

    def _enqueue(self, push: _Push) -> None:
        if self._machine.state in (ChannelState.CLOSED, ChannelState.LEAVING):
            raise NotConnectedError(f"{self.topic} is not subscribed; cannot push {push.event}")
        # Fail now, not at flush time, on what cannot be encoded.
        self._client._serializer.encode(
            Message(self.topic, push.event, push.payload, ref="0", join_ref="0", binary=push.binary)
        )
        limit = self._client.push_buffer_size
        while self._buffer and len(self._buffer) >= limit:
            self._drop(self._buffer.popleft())
        if limit == 0:
            self._drop(push)
            return
        self._buffer.append(push)

    def _drop(self, push: _Push) -> None:
        self.dropped_pushes += 1
        self._client.dropped_pushes += 1
        logger.warning(
            "%s: push buffer full (%d); dropped the oldest %s push (%d dropped so far)",
            self.topic,
            self._client.push_buffer_size,
            push.event,
            self.dropped_pushes,
        )
        if push.future is not None and not push.future.done():
            push.future.set_exception(
                PushError(self.topic, push.event, {"reason": "dropped: push buffer full"})
            )

    async def _flush(self) -> None:
        while self._buffer and self.is_joined and self._client.is_connected:
            push = self._buffer.popleft()
            try:
                await self._send_push(push)
            except NotConnectedError:
                self._buffer.appendleft(push)
                return
            except LocalProtocolError as exc:
                logger.warning("%s: dropping a buffered %s push: %s", self.topic, push.event, exc)
                if push.future is not None and not push.future.done():
                    push.future.set_exception(exc)

    def _fail_buffered(self, error: Exception) -> None:
        while self._buffer:
            push = self._buffer.popleft()
            if push.future is not None and not push.future.done():
                push.future.set_exception(error)

    def _fail_replies(self, error: Exception) -> None:
        replies, self._replies = self._replies, {}
        for future in replies.values():
            if not future.done():
                future.set_exception(error)

    # -- joining ---------------------------------------------------------------------------

    def _join_payload(self) -> dict[str, Any]:
        sent: list[dict[str, Any]] = []
        for binding in self._pg_bindings:
            if binding.spec not in sent:
                sent.append(binding.spec)
        self._pg_sent = sent
        presence = {"key": "", **self._presence_config}
        presence["enabled"] = self._presence_wanted
        config: dict[str, Any] = {
            "broadcast": {"ack": False, "self": False, **self._broadcast_config},
            "presence": presence,
            "postgres_changes": [dict(spec) for spec in sent],
            "private": self._private,
            **self._extra_config,
        }
        payload: dict[str, Any] = {"config": config}
        token = self._client.access_token
        self._join_token = token
        if token:
            payload["access_token"] = token
        return payload

    def _join(self, event: ChannelEvent) -> None:
        client = self._client
        ref = client._make_ref()
        self._machine.handle(event, join_ref=ref)
        self._cancel_timers()
        if not client.is_connected:
            self._machine.handle(ChannelEvent.SOCKET_CLOSED)  # rejoins when the socket opens
            return
        logger.debug("joining %s (join_ref %s)", self.topic, ref)
        msg = Message(self.topic, c.PHX_JOIN, self._join_payload(), ref=ref, join_ref=ref)
        client._spawn(self._send_quietly(msg), f"supa_realtime join {self.topic}")
        self._join_timer = asyncio.get_running_loop().call_later(
            client.timeout, self._on_join_timeout, ref
        )

    async def _send_quietly(self, msg: Message) -> None:
        try:
            await self._client._send(msg)
        except NotConnectedError as exc:
            logger.debug("%s: %s not sent: %s", self.topic, msg.event, exc)

    def _on_join_reply(self, msg: Message) -> None:
        self._cancel_join_timer()
        response = msg.response
        if msg.status == c.STATUS_OK:
            retrack = self._machine.joined_once and self._tracked is not None
            self._machine.handle(ChannelEvent.JOIN_OK)
            self._rejoin_tries = 0
            if not self._match_postgres_changes(response):
                error = JoinError(
                    self.topic,
                    "mismatch between server and client bindings for postgres changes",
                    response,
                )
                logger.error("%s: %s", self.topic, error)
                self._status(c.CHANNEL_ERROR, error)
                self._settle(error)
                self._client._spawn(self.unsubscribe(), f"supa_realtime leave {self.topic}")
                return
            logger.info("joined %s", self.topic)
            self._status(c.SUBSCRIBED, None)
            self._settle(None)
            token = self._client.access_token
            if token and token != self._join_token:
                # set_auth() ran while this join was in flight: bring the server up to date.
                self._client._spawn(
                    self._push_access_token(token), f"supa_realtime auth {self.topic}"
                )
            if retrack and not any(p.event == c.PRESENCE for p in self._buffer):
                self._client._spawn(self._retrack(), f"supa_realtime track {self.topic}")
            if self._buffer:
                self._client._spawn(self._flush(), f"supa_realtime flush {self.topic}")
            return
        reason = response.get("reason") if isinstance(response, dict) else response
        error = JoinError(self.topic, str(reason), response)
        self._machine.handle(ChannelEvent.JOIN_ERROR)
        logger.warning("join of %s refused: %s", self.topic, reason)
        self._status(c.CHANNEL_ERROR, error)
        self._settle(error)
        self._schedule_rejoin()

    def _on_join_timeout(self, ref: str) -> None:
        self._join_timer = None
        if self._machine.state is not ChannelState.JOINING or self.join_ref != ref:
            return
        timeout = self._client.timeout
        self._machine.handle(ChannelEvent.JOIN_TIMEOUT)
        logger.warning("no reply to the join of %s within %.3g s", self.topic, timeout)
        error = JoinTimeout(self.topic, timeout)
        self._status(c.TIMED_OUT, error)
        self._settle(error)
        if self._client.is_connected:
            # Let the server drop the abandoned join; its phx_close is stale by now.
            leave = Message(self.topic, c.PHX_LEAVE, {}, ref=self._client._make_ref(), join_ref=ref)
            self._client._spawn(self._send_quietly(leave), f"supa_realtime leave {self.topic}")
        self._schedule_rejoin()

    def _match_postgres_changes(self, response: Any) -> bool:
        server = response.get("postgres_changes") if isinstance(response, dict) else None
        server = server or []
        sent = self._pg_sent
        if not isinstance(server, list) or len(server) != len(sent):
            return not sent and not server
        ids: list[int] = []
        for theirs, ours in zip(server, sent, strict=True):
            if not isinstance(theirs, dict) or not all(_same(theirs, ours, k) for k in _PG_KEYS):
                return False
            server_id = theirs.get("id")
            if not isinstance(server_id, int) or isinstance(server_id, bool):
                return False
            ids.append(server_id)
        for binding in self._pg_bindings:
            binding.id = ids[sent.index(binding.spec)] if binding.spec in sent else None
        return True

    async def _retrack(self) -> None:
        try:
            await self._request(
                c.PRESENCE,
                {"type": "presence", "event": c.PRESENCE_TRACK, "payload": self._tracked},
                timeout=None,
            )
        except (PushError, PushTimeout, NotConnectedError) as exc:
            logger.warning("%s: presence not tracked again after the rejoin: %s", self.topic, exc)

    def _schedule_rejoin(self) -> None:
        if not self._machine.should_rejoin or not self._client.is_connected:
            return
        self._rejoin_tries += 1
        delay = self._client.rejoin_backoff(self._rejoin_tries)
        if delay is None:
            logger.error("%s: giving up rejoining after %d tries", self.topic, self._rejoin_tries)
            return
        logger.info("rejoining %s in %.3g s (try %d)", self.topic, delay, self._rejoin_tries)
        self._cancel_rejoin()
        self._rejoin_task = self._client._spawn(
            self._rejoin_after(delay), f"supa_realtime rejoin {self.topic}"
        )

    async def _rejoin_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._rejoin_task = None
        if self._machine.should_rejoin and self._client.is_connected:
            self._join(ChannelEvent.REJOIN)

    def _settle(self, error: Exception | None) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)

    def _status(self, status: str, error: Exception | None) -> None:
        if self._subscribe_callback is not None:
            self._client._invoke(self._subscribe_callback, "subscribe", status, error)

    def _cancel_join_timer(self) -> None:
        if self._join_timer is not None:
            self._join_timer.cancel()
            self._join_timer = None

    def _cancel_rejoin(self) -> None:
        if self._rejoin_task is not None:
            self._rejoin_task.cancel()
            self._rejoin_task = None

    def _cancel_timers(self) -> None:
        self._cancel_join_timer()
        self._cancel_rejoin()

    def _finish_closed(self) -> None:
        self._cancel_timers()
        self._status(c.CLOSED, None)
        self._settle(JoinError(self.topic, "channel closed"))
        error = NotConnectedError(f"{self.topic} is closed")
        self._fail_buffered(error)
        self._fail_replies(error)
        self._client._forget(self)

    # -- socket events (called by the client) ----------------------------------------------

    def _on_socket_open(self) -> None:
        self._rejoin_tries = 0
        self._cancel_rejoin()
        if self._machine.should_rejoin:
            self._join(ChannelEvent.REJOIN)

    def _on_socket_closed(self) -> None:
        self._cancel_timers()
        self._fail_replies(NotConnectedError(f"the connection closed; {self.topic} has no reply"))
        before = self._machine.state
        after = self._machine.handle(ChannelEvent.SOCKET_CLOSED)
        if before in (ChannelState.JOINING, ChannelState.JOINED):
            self._status(c.CHANNEL_ERROR, NotConnectedError("the connection closed"))
        elif before is ChannelState.LEAVING and after is ChannelState.CLOSED:
            self._finish_closed()

    def _on_client_closed(self) -> None:
        before = self._machine.state
        self._machine.handle(ChannelEvent.CLOSE)
        if before is not ChannelState.CLOSED:
            self._status(c.CLOSED, None)
        self._cancel_timers()
        self._settle(NotConnectedError("the client was closed"))
        error = NotConnectedError("the client was closed")
        self._fail_buffered(error)
        self._fail_replies(error)

    # -- inbound ---------------------------------------------------------------------------

    def _on_message(self, msg: Message) -> None:
        event = msg.event
        if event == c.PHX_REPLY:
            ref = msg.ref
            if ref is not None:
                if ref == self._machine.join_ref and self._machine.state is ChannelState.JOINING:
                    self._on_join_reply(msg)
                    return
                future = self._replies.pop(ref, None)
                if future is not None and not future.done():
                    future.set_result(msg)
            return
        if is_stale(msg, self._machine.join_ref):
            logger.debug("%s: dropping stale %s (join_ref %s)", self.topic, event, msg.join_ref)
            return
        if event == c.BROADCAST:
            self._on_broadcast(msg)
        elif event == c.POSTGRES_CHANGES:
            self._on_postgres_changes(msg)
        elif event == c.PRESENCE_DIFF:
            if self._presence_wanted:
                self._apply_presence(self._presence.on_diff, msg.payload)
        elif event == c.PRESENCE_STATE:
            if self._presence_wanted:
                self._apply_presence(self._presence.on_state, msg.payload)
        elif event == c.SYSTEM:
            self._on_system(msg)
        elif event == c.PHX_CLOSE:
            self._on_phx_close()
        elif event == c.PHX_ERROR:
            self._on_phx_error()
        else:
            logger.debug("%s: no handler for %s", self.topic, event)

    def _on_broadcast(self, msg: Message) -> None:
        body = msg.payload
        if not isinstance(body, dict):
            return
        name = body.get("event")
        name = name.lower() if isinstance(name, str) else ""
        invoke = self._client._invoke
        for event, callback in self._broadcast_bindings:
            if event == "*" or event == name:
                invoke(callback, "broadcast", body)

    def _on_postgres_changes(self, msg: Message) -> None:
        payload = msg.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
            logger.warning("%s: malformed postgres_changes payload dropped", self.topic)
            return
        ids = payload.get("ids") or []
        kind = str(payload["data"].get("type", "")).upper()
        change: PostgresChange | None = None
        for binding in self._pg_bindings:
            if binding.id is None or binding.id not in ids:
                continue
            if binding.event != "*" and binding.event != kind:
                continue
            if change is None:
                change = PostgresChange.from_message(msg)
            self._client._invoke(binding.callback, "postgres_changes", change)

    def _apply_presence(
        self, step: Callable[[Any, str | None], SyncOutcome | None], payload: Any
    ) -> None:
        try:
            outcome = step(payload, self._machine.join_ref)
        except RemoteProtocolError as exc:
            logger.warning("%s: presence frame dropped: %s", self.topic, exc)
            return
        if outcome is None:
            return  # buffered until the state of this join arrives
        invoke = self._client._invoke
        for change in outcome.events:
            if isinstance(change, PresenceJoin):
                for join_cb in self._presence_join_callbacks:
                    invoke(join_cb, "presence join", change.key, change.current, change.new)
            else:
                for leave_cb in self._presence_leave_callbacks:
                    invoke(leave_cb, "presence leave", change.key, change.current, change.left)
        for sync_cb in self._presence_sync_callbacks:
            invoke(sync_cb, "presence sync")

    def _on_system(self, msg: Message) -> None:
        payload = msg.payload if isinstance(msg.payload, dict) else {"message": msg.payload}
        if payload.get("status") == c.STATUS_ERROR:
            logger.warning(
                "%s: system error from %s: %s",
                self.topic,
                payload.get("extension"),
                payload.get("message"),
            )
        for callback in self._system_callbacks:
            self._client._invoke(callback, "system", payload)

    def _on_phx_close(self) -> None:
        before = self._machine.state
        self._machine.handle(ChannelEvent.PHX_CLOSE)
        if before is ChannelState.CLOSED:
            return
        logger.info("%s closed by the server", self.topic)
        self._finish_closed()

    def _on_phx_error(self) -> None:
        before = self._machine.state
        after = self._machine.handle(ChannelEvent.PHX_ERROR)
        if after is ChannelState.CLOSED:
            self._finish_closed()
            return
        logger.warning("%s errored on the server (phx_error); rejoining", self.topic)
        self._cancel_join_timer()
        error = RealtimeError(f"{self.topic} crashed on the server (phx_error)")
        if before is ChannelState.JOINING:
            self._settle(JoinError(self.topic, "phx_error during the join"))
        self._status(c.CHANNEL_ERROR, error)
        self._schedule_rejoin()
