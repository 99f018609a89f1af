"""``RealtimeConsumer``: the Supabase Realtime protocol, server side, for Django's browsers.

Theory of operation
-------------------
A raw :class:`channels.consumer.AsyncConsumer` that speaks PROTOCOL.md to one socket:
V1 or V2 (``?vsn=``), binary kinds 3 (in) and 4 (out). The protocol rules are the local
Realtime server's (:mod:`supa_realtime.phoenix.join` and friends); what differs is *who may
do what*, decided by Django (:mod:`supa_realtime.gateway.policy`).

Identity, at the handshake: a gateway token in ``apikey`` (query) or ``x-api-key``
(header), minted by :func:`supa_realtime.gateway.tokens.mint_token`, names the user
(``sub``) and the topics and actions it grants; without a token the user is the session's
(``scope["user"]``, from ``AuthMiddlewareStack``; sockets without an ``Origin`` header skip
session authentication, see :mod:`supa_realtime.gateway.routing`). A token that fails
verification (expired, bad signature, malformed) refuses the socket: HTTP 401 with
Realtime's ``{"error": ...}`` where the ASGI server supports denial responses (uvicorn),
a plain 403 under daphne. A join may carry its own ``access_token``;
``access_token`` pushes replace it (failures stop the channel with a ``system`` error and
``phx_close``, as Realtime does), and a channel whose token expires is stopped the same way.

Authorization runs once per join, in a thread (it may query the database): ``join``,
``broadcast``, ``presence``, and ``postgres_changes:<schema>.<table>`` for each binding.
A refused join gets ``{"status": "error", "response": {"reason": "Unauthorized: ..."}}``
and the socket stays open for other topics.

The consumer has no channel-layer channel of its own: the process's
:class:`~supa_realtime.gateway.hub.Hub` joins the topic's group once and writes relayed
frames straight to the sockets (:meth:`RealtimeConsumer.send_event`).

Bad input is answered on that connection only: a frame over ``MAX_FRAME_BYTES`` or one that
cannot be decoded closes the socket (4009 / 4007) after a ``system`` frame on the
``phoenix`` topic saying why (daphne does not send close reasons); unknown events get an
error reply; over ``RATE`` frames per second (``BURST`` at once) get ``RateLimited`` error
replies, and ``FLOOD_CLOSE_AFTER`` refusals in a row close the socket with 4008.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs

import orjson
from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer

from ..conf import settings as realtime_settings
from ..exceptions import RemoteProtocolError
from ..groups import group_for
from ..phoenix import constants as c
from ..phoenix.filters import Binding
from ..phoenix.inbound import frame_size, redact
from ..phoenix.join import (
    CHANNEL_LIMIT_REASON,
    PAYLOAD_SIZE_EXCEEDED,
    PRESENCE_RATE_MESSAGE,
    SUBSCRIBED_MESSAGE,
    TOPIC_NAME_REQUIRED,
    TRACK_NOT_MAP,
    TRACK_SIZE_MESSAGE,
    JoinConfig,
    channel_push,
    close_push,
    parse_bindings,
    payload_size,
    refreshed_token,
    system_push,
    unmatched_reply,
)
from ..phoenix.message import Message, reply, subtopic
from ..phoenix.serializer import Serializer, excerpt, serializer_for
from ..phoenix.server_presence import generated_key
from . import policy
from .hub import GATEWAY_FIELD, Hub, send_event
from .ratelimit import FloodGuard, TokenBucket
from .tokens import TokenClaims, TokenRejection, verify_token

__all__ = ["GatewayChannel", "RealtimeConsumer", "get_hub"]

logger = logging.getLogger(__name__)

# Close codes: the 1007/1008/1009 of RFC 6455 moved into the application range (+3000),
# because ASGI servers such as daphne only let applications send 1000 or 3000-4999.
CLOSE_INVALID_DATA: Final = 4007
CLOSE_POLICY_VIOLATION: Final = 4008
CLOSE_MESSAGE_TOO_BIG: Final = 4009
RATE_LIMITED: Final = "RateLimited: Too many messages per second"
_KIND_3: Final = bytes([c.KIND_USER_BROADCAST_PUSH])
_ids = itertools.count(1)
_conn_ids = itertools.count(1)


def _unauthorized_read(sub: str) -> str:
    return f"Unauthorized: You do not have permissions to read from this Channel topic: {sub}"


def _unauthorized(action: str, sub: str) -> str:
    return f"Unauthorized: You do not have permission to {action} on this Channel topic: {sub}"


# -- the process's hub -------------------------------------------------------------------

_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()
_hub_lock: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def get_hub() -> Hub:
    """The hub of the running event loop, started on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is not None:
        return hub
    lock = _hub_lock.setdefault(loop, asyncio.Lock())
    async with lock:
        hub = _hubs.get(loop)
        if hub is None:
            hub = _build_hub()
            await hub.start()
            _hubs[loop] = hub
    return hub


def _build_hub() -> Hub:
    import redis.asyncio
    from channels.layers import get_channel_layer

    from ..presence import PresenceStore

    gateway = realtime_settings.GATEWAY
    layer = get_channel_layer(realtime_settings.CHANNEL_LAYER)
    client = redis.asyncio.Redis.from_url(realtime_settings.REDIS_URL)
    store = PresenceStore(
        client,
        layer,
        prefix=realtime_settings.REDIS_PREFIX,
        ttl=gateway.presence_ttl,
        refresh=gateway.presence_refresh,
        sweep=gateway.presence_sweep,
    )
    return Hub(
        layer,
        store,
        redis=client,
        redis_prefix=realtime_settings.REDIS_PREFIX,
        relayed=[s.full_topic for s in realtime_settings.SUBSCRIPTIONS],
        bridge=gateway.bridge,
        bridge_refresh=gateway.bridge_refresh,
        idle_timeout=gateway.idle_timeout,
    )


# -- one join ------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class GatewayChannel:
    """One joined topic on one socket."""

    conn: RealtimeConsumer
    topic: str
    join_ref: str | None
    config: JoinConfig
    claims: TokenClaims | None
    token: str | None
    user: Any = None
    bindings: list[Binding] = field(default_factory=list)
    may_broadcast: bool = False
    may_track: bool = False
    presence_key: str = ""
    presence_limiter: TokenBucket | None = None
    tracked: bool = False
    expiry: asyncio.TimerHandle | None = None
    id: int = field(default_factory=lambda: next(_ids))

    def push(self, event: str, payload: Any) -> Message:
        """A push the channel sends itself: ``[join_ref, null, ...]`` (PROTOCOL.md §1.6)."""
        return channel_push(self.topic, self.join_ref, event, payload)

    def system(self, extension: str, status: str, text: str) -> Message:
        return system_push(self.topic, self.join_ref, extension, status, text)

    def close_message(self) -> Message:
        return close_push(self.topic, self.join_ref)


@dataclass(frozen=True, slots=True)
class _Grants:
    join: bool
    broadcast: bool
    presence: bool
    denied_table: str | None


# -- the consumer --------------------------------------------------------------------------


class RealtimeConsumer(AsyncConsumer):  # type: ignore[misc]
    """One browser socket speaking the Supabase Realtime protocol."""

    hub: Hub
    serializer: Serializer
    vsn: str = c.VSN_1

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # No channel-layer channel per socket: the hub receives for the whole process.
        from channels.utils import await_many_dispatch

        self.scope = scope
        self.base_send = send
        self.channel_layer = None
        self.channels: dict[str, GatewayChannel] = {}
        self.user: Any = None
        self.claims: TokenClaims | None = None
        self.token: str | None = None
        self.open = False
        self.last_seen = time.monotonic()
        self.conn_id = str(next(_conn_ids))
        client = scope.get("client")
        self.peer = f"{client[0]}:{client[1]}" if client else "?"
        try:
            await await_many_dispatch([receive], self.dispatch)
        except StopConsumer:
            pass
        finally:
            await self._cleanup()

    # handshake ---------------------------------------------------------------------------

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in self.scope.get("headers", [])
        }
        try:
            self.serializer = serializer_for(query.get("vsn", [None])[0], "server")
        except RemoteProtocolError:
            logger.info("gateway socket %s refused: unsupported vsn", self.peer)
            await self._refuse(403, None)
            return
        self.vsn = self.serializer.vsn
        token = headers.get("x-api-key") or query.get("apikey", [None])[0]
        self.user = self.scope.get("user")
        if self.user is None:
            from django.contrib.auth.models import AnonymousUser

            self.user = AnonymousUser()
        if token:
            checked = verify_token(token)
            if isinstance(checked, TokenRejection):
                logger.info("gateway socket %s refused: %s", self.peer, checked.handshake)
                await self._refuse(401, checked.handshake)
                return
            self.claims = checked
            self.token = token
            self.user = await _user_for(checked)
        self.hub = await get_hub()
        gateway = realtime_settings.GATEWAY
        self.gateway = gateway
        self.flood = FloodGuard(gateway.rate, gateway.burst, gateway.flood_close_after)
        await self.base_send({"type": "websocket.accept"})
        self.open = True
        self.hub.connections.add(self)
        logger.info(
            "gateway socket %s connected (vsn %s, user %s)",
            self.peer,
            self.vsn,
            getattr(self.user, "pk", None) if self.user is not None else None,
        )

    async def _refuse(self, status: int, error: str | None) -> None:
        """Refuse the upgrade: Realtime's HTTP status and ``{"error": ...}`` body where the
        server supports the ASGI denial response extension (uvicorn), else a plain 403."""
        if "websocket.http.response" not in self.scope.get("extensions", {}):
            await self.base_send({"type": "websocket.close", "code": 1000})
            return
        body = b"" if error is None else orjson.dumps({"error": error})
        headers = [(b"content-type", b"application/json")] if error is not None else []
        await self.base_send(
            {"type": "websocket.http.response.start", "status": status, "headers": headers}
        )
        await self.base_send({"type": "websocket.http.response.body", "body": body})

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        raise StopConsumer

    async def _cleanup(self) -> None:
        was_open, self.open = self.open, False
        if not was_open and not self.channels:
            return
        hub = getattr(self, "hub", None)
        if hub is not None:
            hub.connections.discard(self)
        for channel in list(self.channels.values()):
            try:
                await self._drop(channel, reason="leave")
            except Exception:
                logger.exception(
                    "gateway socket %s: cleanup of %r failed", self.peer, channel.topic
                )
        logger.info("gateway socket %s closed", self.peer)

    # writing -----------------------------------------------------------------------------

    async def send_frame(self, frame: str | bytes) -> bool:
        """Write one encoded frame; ``False`` when the socket is gone."""
        return await self.send_event(send_event(frame))

    async def send_event(self, event: dict[str, Any]) -> bool:
        """Write one ``websocket.send`` event (the hub shares one per frame among sockets);
        ``False`` when the socket is gone."""
        if not self.open:
            return False
        try:
            await self.base_send(event)
        except (OSError, RuntimeError, ValueError) as exc:  # the socket is gone
            logger.debug("gateway socket %s: send failed (%s)", self.peer, exc)
            self.open = False
            return False
        return True

    async def send_message(self, message: Message) -> bool:
        try:
            frame = self.serializer.encode(message)
        except Exception:
            logger.exception("gateway socket %s: cannot encode %r", self.peer, message.event)
            return False
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("> %s %s", self.peer, redact(excerpt(frame)))
        return await self.send_frame(frame)

    async def close_with_reason(self, code: int, reason: str) -> None:
        """Say why on the ``phoenix`` topic, then close with ``code`` (and ``reason``)."""
        if not self.open:
            return
        logger.info("gateway socket %s closed by the server: %s", self.peer, reason)
        await self.send_message(
            Message(
                c.PHOENIX_TOPIC,
                c.SYSTEM,
                {"extension": c.EXTENSION_SYSTEM, "status": c.STATUS_ERROR, "message": reason},
            )
        )
        self.open = False
        self.hub.connections.discard(self)
        await self.base_send({"type": "websocket.close", "code": code, "reason": reason[:120]})

    # reading -----------------------------------------------------------------------------

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        if not self.open:
            return
        self.last_seen = time.monotonic()
        data: str | bytes | None = message.get("text")
        if data is None:
            data = message.get("bytes")
        if data is None:
            return
        limit = self.gateway.max_frame_bytes
        size = frame_size(data, limit)
        if size > limit:
            await self.close_with_reason(
                CLOSE_MESSAGE_TOO_BIG, f"frame of {size} bytes exceeds {limit}"
            )
            return
        try:
            if isinstance(data, bytes) and data[:1] != _KIND_3:
                raise RemoteProtocolError(
                    f"binary frame kind {data[:1].hex() or 'none'} is not a client kind"
                )
            msg = self.serializer.decode(data)
        except RemoteProtocolError as exc:
            logger.info("gateway socket %s sent a malformed frame: %s", self.peer, redact(str(exc)))
            await self.close_with_reason(
                CLOSE_INVALID_DATA, f"malformed frame: {redact(str(exc))[:80]}"
            )
            return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("< %s %s", self.peer, redact(excerpt(data)))
        verdict = self.flood.check()
        if verdict != "ok":
            if verdict == "close":
                await self.close_with_reason(CLOSE_POLICY_VIOLATION, "rate limit exceeded")
            elif msg.ref is not None:
                await self._error(msg, RATE_LIMITED)
            return
        try:
            await self._dispatch(msg)
        except Exception:
            logger.exception(
                "gateway socket %s: failed to handle %r on %r", self.peer, msg.event, msg.topic
            )
            channel = self.channels.get(msg.topic)
            if channel is not None:
                await self.send_message(close_push(channel.topic, channel.join_ref, c.PHX_ERROR))
                await self._drop(channel, reason="leave")

    async def _dispatch(self, msg: Message) -> None:
        if msg.topic == c.PHOENIX_TOPIC and msg.event == c.HEARTBEAT:
            await self.send_message(reply(msg, c.STATUS_OK, {}))
            return
        if msg.event == c.PHX_JOIN:
            await self._join(msg)
            return
        channel = self.channels.get(msg.topic)
        if channel is None:
            if msg.event == c.PHX_LEAVE:
                await self.send_message(reply(msg, c.STATUS_OK, {}))
            else:
                await self._unmatched(msg)
            return
        if msg.event == c.BROADCAST:
            await self._broadcast(channel, msg)
        elif msg.event == c.PRESENCE:
            await self._presence(channel, msg)
        elif msg.event == c.ACCESS_TOKEN:
            await self._access_token(channel, msg)
        elif msg.event == c.PHX_LEAVE:
            await self.send_message(reply(msg, c.STATUS_OK, {}))
            await self._close_channel(channel)
            logger.info("gateway socket %s left %r", self.peer, channel.topic)
        else:
            logger.info("gateway socket %s: unknown event %r", self.peer, msg.event[:40])
            if msg.ref is not None:
                await self._error(msg, f"UnknownEvent: {msg.event[:60]!r} is not an event")

    async def _error(self, msg: Message, reason: str) -> None:
        await self.send_message(reply(msg, c.STATUS_ERROR, {"reason": reason}))

    async def _unmatched(self, msg: Message) -> None:
        await self.send_message(unmatched_reply(msg))

    # joins -------------------------------------------------------------------------------

    async def _join_error(self, msg: Message, reason: str) -> None:
        logger.info("gateway socket %s: join of %r refused: %s", self.peer, msg.topic, reason)
        await self._error(msg, reason)

    async def _join(self, msg: Message) -> None:
        topic = msg.topic
        if not topic.startswith(c.TOPIC_PREFIX):
            await self._unmatched(msg)
            return
        old = self.channels.get(topic)
        if old is not None:
            await self._close_channel(old)
        if topic == c.TOPIC_PREFIX:
            await self._join_error(msg, TOPIC_NAME_REQUIRED)
            return
        if len(self.channels) >= self.gateway.max_channels:
            await self._join_error(msg, CHANNEL_LIMIT_REASON)
            return
        config = JoinConfig.parse(msg.payload)
        claims, token = self.claims, self.token
        if config.access_token is not None and config.access_token != self.token:
            checked = verify_token(config.access_token)
            if isinstance(checked, TokenRejection):
                await self._join_error(msg, checked.join_reason)
                return
            claims, token = checked, config.access_token
        bindings, entries, binding_error = parse_bindings(config.postgres_changes)
        user = self.user if claims is self.claims else await _user_for(claims)
        grants = await _grants(user, topic, bindings, claims)
        sub = subtopic(topic)
        if not grants.join:
            await self._join_error(msg, _unauthorized_read(sub))
            return
        if grants.denied_table is not None:
            await self._join_error(
                msg,
                "Unauthorized: You do not have permission to receive changes of "
                f"{grants.denied_table}",
            )
            return
        channel = GatewayChannel(
            conn=self,
            topic=topic,
            join_ref=msg.join_ref,
            config=config,
            claims=claims,
            token=token,
            user=user,
            bindings=bindings,
            may_broadcast=grants.broadcast,
            may_track=grants.presence,
            presence_key=config.presence_key or generated_key(),
            presence_limiter=TokenBucket(
                c.PRESENCE_MAX_CALLS / c.PRESENCE_WINDOW_S, c.PRESENCE_MAX_CALLS
            ),
        )
        self.channels[topic] = channel
        # Subscribed before the reply: whatever is sent after the client saw "ok" reaches it.
        await self.hub.subscribe(channel)
        await self.send_message(reply(msg, c.STATUS_OK, {"postgres_changes": entries}))
        self._schedule_expiry(channel)
        logger.info("gateway socket %s joined %r", self.peer, topic)
        if binding_error is not None:
            await self.send_message(
                channel.system(c.EXTENSION_POSTGRES_CHANGES, c.STATUS_ERROR, binding_error)
            )
        elif bindings:
            await self.send_message(
                channel.system(c.EXTENSION_POSTGRES_CHANGES, c.STATUS_OK, SUBSCRIBED_MESSAGE)
            )
        if config.presence_enabled and self.hub.presence is not None:
            state = await self.hub.presence.state(topic)
            await self.send_message(channel.push(c.PRESENCE_STATE, state))

    def _schedule_expiry(self, channel: GatewayChannel) -> None:
        if channel.expiry is not None:
            channel.expiry.cancel()
            channel.expiry = None
        if channel.claims is None:
            return
        exp = channel.claims.exp
        loop = asyncio.get_running_loop()

        def expire() -> None:
            if self.channels.get(channel.topic) is channel:
                ago = max(0, int(time.time() - exp))
                task = loop.create_task(
                    self._stop_channel(channel, f"Token has expired {ago} seconds ago")
                )
                _background.add(task)
                task.add_done_callback(_background.discard)

        channel.expiry = loop.call_later(max(0.0, exp - time.time()), expire)

    async def _close_channel(self, channel: GatewayChannel) -> None:
        await self.send_message(channel.close_message())
        await self._drop(channel, reason="leave")

    async def _stop_channel(self, channel: GatewayChannel, text: str) -> None:
        """A channel-level ``system`` error, then ``phx_close`` (PROTOCOL.md §3.7)."""
        logger.info("gateway socket %s: channel %r stopped: %s", self.peer, channel.topic, text)
        await self.send_message(channel.system(c.EXTENSION_SYSTEM, c.STATUS_ERROR, text))
        await self._close_channel(channel)

    async def _drop(self, channel: GatewayChannel, *, reason: str) -> None:
        if self.channels.get(channel.topic) is channel:
            del self.channels[channel.topic]
        if channel.expiry is not None:
            channel.expiry.cancel()
            channel.expiry = None
        await self.hub.unsubscribe(channel)
        if channel.tracked and self.hub.presence is not None:
            channel.tracked = False
            await self.hub.presence.untrack(channel.topic, self._entry(channel), reason=reason)

    def _entry(self, channel: GatewayChannel) -> str:
        assert self.hub.presence is not None
        return self.hub.presence.entry_id(self.conn_id, channel.id)

    # pushes ------------------------------------------------------------------------------

    async def _broadcast(self, channel: GatewayChannel, msg: Message) -> None:
        sub = subtopic(channel.topic)
        if not channel.may_broadcast:
            if msg.ref is not None:
                await self._error(msg, _unauthorized("broadcast", sub))
            return
        if payload_size(msg.payload) > self.gateway.max_payload_bytes:
            logger.info("gateway socket %s: broadcast over the payload limit", self.peer)
            if msg.ref is not None:
                await self.send_message(reply(msg, c.STATUS_ERROR, PAYLOAD_SIZE_EXCEEDED))
            return
        body = msg.payload if isinstance(msg.payload, dict) else {}
        event = body.get("event")
        if not isinstance(event, str) or not event:
            if msg.ref is not None:
                await self._error(msg, "InvalidBroadcast: a broadcast needs a string 'event'")
            return
        group_message: dict[str, Any] = {
            "type": "realtime.broadcast",
            "topic": channel.topic,
            **{k: v for k, v in body.items() if k not in ("type", "topic", GATEWAY_FIELD)},
            GATEWAY_FIELD: {"origin": f"{self.hub.id}/{channel.id}", "binary": msg.binary},
        }
        group_message.pop("meta", None)  # client metadata is dropped, as Realtime does
        if not msg.binary and self.hub.forwarded(channel.topic):
            await self.hub.forward(channel.topic, event, body.get("payload"))
        if self.hub.layer is not None:
            await self.hub.layer.group_send(group_for(channel.topic), group_message)
        if channel.config.ack and msg.ref is not None:
            await self.send_message(reply(msg, c.STATUS_OK, {}))

    async def _presence(self, channel: GatewayChannel, msg: Message) -> None:
        store = self.hub.presence
        sub = subtopic(channel.topic)
        if not channel.may_track or store is None:
            await self._error(msg, _unauthorized("track presence", sub))
            return
        assert channel.presence_limiter is not None
        if not channel.presence_limiter.take():
            await self._stop_channel(channel, PRESENCE_RATE_MESSAGE)
            return
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        event = payload.get("event")
        if event is None:
            await self.send_message(reply(msg, c.STATUS_OK, {}))
            return
        action = str(event).lower()
        if action == c.PRESENCE_TRACK:
            meta = payload.get("payload")
            if not isinstance(meta, dict):
                await self._error(msg, TRACK_NOT_MAP)
                return
            if payload_size(meta) > self.gateway.max_payload_bytes:
                await self._stop_channel(channel, TRACK_SIZE_MESSAGE)
                return
            await self.send_message(reply(msg, c.STATUS_OK, {}))
            pk = getattr(channel.user, "pk", None) if channel.user is not None else None
            channel.tracked = True
            await store.track(
                channel.topic,
                channel.presence_key,
                self._entry(channel),
                meta,
                user=None if pk is None else str(pk),
            )
        elif action == c.PRESENCE_UNTRACK:
            await self.send_message(reply(msg, c.STATUS_OK, {}))
            if channel.tracked:
                channel.tracked = False
                await store.untrack(channel.topic, self._entry(channel))
        else:
            await self.send_message(reply(msg, c.STATUS_ERROR, {}))

    async def _access_token(self, channel: GatewayChannel, msg: Message) -> None:
        token = refreshed_token(msg.payload, channel.token)
        if token is None:
            return
        checked = verify_token(token)
        if isinstance(checked, TokenRejection):
            await self._stop_channel(channel, checked.detail)
            return
        user = await _user_for(checked) if checked.sub is not None else self.user
        grants = await _grants(user, channel.topic, channel.bindings, checked)
        sub = subtopic(channel.topic)
        if not grants.join or grants.denied_table is not None:
            await self._stop_channel(
                channel, f"You no longer have permission to read from this Channel topic: {sub}"
            )
            return
        channel.claims, channel.token = checked, token
        channel.may_broadcast, channel.may_track = grants.broadcast, grants.presence
        channel.user = user
        self._schedule_expiry(channel)
        if channel.bindings:
            await self.send_message(
                channel.system(c.EXTENSION_POSTGRES_CHANGES, c.STATUS_OK, SUBSCRIBED_MESSAGE)
            )


_background: set[asyncio.Task[None]] = set()


async def _user_for(claims: TokenClaims | None) -> Any:
    return await database_sync_to_async(_user_for_sync)(claims)


async def _grants(
    user: Any, topic: str, bindings: list[Binding], claims: TokenClaims | None
) -> _Grants:
    grants: _Grants = await database_sync_to_async(_grants_sync)(user, topic, bindings, claims)
    return grants


# -- sync helpers (run in a thread) ---------------------------------------------------------


def _user_for_sync(claims: TokenClaims | None) -> Any:
    """The user a token names (inactive or missing users are anonymous)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser

    if claims is None or claims.sub is None:
        return AnonymousUser()
    model = get_user_model()
    try:
        user = model._default_manager.get(pk=claims.sub)
    except (model.DoesNotExist, ValueError):
        return AnonymousUser()
    return user if getattr(user, "is_active", True) else AnonymousUser()


def _grants_sync(
    user: Any, topic: str, bindings: list[Binding], claims: TokenClaims | None
) -> _Grants:
    sub = subtopic(topic)
    if not policy.authorize(user, sub, "join", claims):
        return _Grants(False, False, False, None)
    denied: str | None = None
    for binding in bindings:
        schema = binding.schema or "*"
        table = binding.table or "*"
        if not policy.authorize(user, sub, policy.table_action(schema, table), claims):
            denied = f"{schema}.{table}"
            break
    return _Grants(
        True,
        policy.authorize(user, sub, "broadcast", claims),
        policy.authorize(user, sub, "presence", claims),
        denied,
    )
