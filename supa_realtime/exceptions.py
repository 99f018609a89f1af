"""Every exception supa_realtime raises.

The hierarchy::

    RealtimeError
     ├── ProtocolError            a frame that does not follow the wire protocol
     │    ├── RemoteProtocolError  ... received from the peer
     │    └── LocalProtocolError   ... that we were asked to send (or an illegal transition)
     ├── ConnectionRefused        the server refused the websocket handshake (status, reason)
     │    └── AuthorizationError   ... because of the token (HTTP 401 / 403)
     ├── NotConnectedError        a push that needs a live socket found none
     ├── JoinError                the server answered a join with an error (carries its reason)
     ├── JoinTimeout              no answer to a join in time (also a ``TimeoutError``)
     ├── PushTimeout              no answer to a push in time (also a ``TimeoutError``)
     ├── PushError                the server answered a push with an error status
     ├── BindingError             a postgres_changes binding the server would refuse
     ├── BroadcastError           a broadcast() that could not be made
     │    ├── InvalidBroadcast     ... because of its topic, event or payload (at the call site;
     │    │                        also a ``ValueError``)
     │    └── BroadcastRejected    ... because the REST API answered with an error (status,
     │         │                   the server's message)
     │         ├── BroadcastUnauthorized  HTTP 401 / 403: the key was refused
     │         ├── BroadcastInvalid       HTTP 422: a message the server would not take
     │         └── BroadcastRateLimited   HTTP 429: over the project's rate limit
     ├── LeaseLost                the worker lost its lease and stopped being the active one
     └── ConfigurationError       a setting is missing or malformed (names the setting)
          └── PrerequisiteError    the database cannot serve logical decoding (says what to do)

This module imports nothing from asyncio, websockets or Django so that the
sans-I/O protocol core can raise these too.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthorizationError",
    "BindingError",
    "BroadcastError",
    "BroadcastInvalid",
    "BroadcastRateLimited",
    "BroadcastRejected",
    "BroadcastUnauthorized",
    "ConfigurationError",
    "ConnectionRefused",
    "InvalidBroadcast",
    "JoinError",
    "JoinTimeout",
    "LeaseLost",
    "LocalProtocolError",
    "NotConnectedError",
    "PrerequisiteError",
    "ProtocolError",
    "PushError",
    "PushTimeout",
    "RealtimeError",
    "RemoteProtocolError",
]


class RealtimeError(Exception):
    """Base class of every supa_realtime error."""


class ProtocolError(RealtimeError):
    """A frame or a transition that the Supabase Realtime protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something we cannot decode or that breaks the protocol."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol cannot carry, or to make an illegal
    channel transition."""


class ConnectionRefused(RealtimeError):
    """The server answered the websocket upgrade with an HTTP error.

    ``status`` is the HTTP status and ``reason`` the server's ``error`` text, when it sent one.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"connection refused with HTTP {status}: {reason or '(no reason given)'}")
        self.status = status
        self.reason = reason


class AuthorizationError(ConnectionRefused):
    """The server refused the connection because of the API key or access token."""


class NotConnectedError(RealtimeError):
    """The operation needs an open socket and there is none."""


class JoinError(RealtimeError):
    """The server answered ``phx_join`` with ``status: error``.

    ``reason`` is the server's text, e.g. ``"ChannelRateLimitReached: Too many channels"``;
    ``response`` is the whole ``response`` object of the reply.
    """

    def __init__(self, topic: str, reason: str, response: Any = None) -> None:
        super().__init__(f"join of {topic!r} refused: {reason}")
        self.topic = topic
        self.reason = reason
        self.response = response


class JoinTimeout(RealtimeError, TimeoutError):
    """The server did not answer ``phx_join`` within the push timeout."""

    def __init__(self, topic: str, timeout: float) -> None:
        super().__init__(f"no reply to the join of {topic!r} within {timeout:g} s")
        self.topic = topic
        self.timeout = timeout


class PushTimeout(RealtimeError, TimeoutError):
    """The server did not answer a push within the push timeout."""

    def __init__(self, topic: str, event: str, timeout: float) -> None:
        super().__init__(f"no reply to {event!r} on {topic!r} within {timeout:g} s")
        self.topic = topic
        self.event = event
        self.timeout = timeout


class PushError(RealtimeError):
    """The server answered a push with ``status: error``; ``response`` is its answer."""

    def __init__(self, topic: str, event: str, response: Any) -> None:
        super().__init__(f"{event!r} on {topic!r} refused: {response!r}")
        self.topic = topic
        self.event = event
        self.response = response


class BindingError(RealtimeError):
    """A ``postgres_changes`` binding the server would refuse (PROTOCOL.md §3.7, §4.1, §4.2).

    ``message`` is the exact text the server puts in its ``system`` error for this binding,
    e.g. ``"Error parsing `filter` params: [\"foo\", \"hey\"]"``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BroadcastError(RealtimeError):
    """A broadcast could not be made."""


class InvalidBroadcast(BroadcastError, ValueError):
    """``broadcast()`` was called with a topic, event or payload that cannot be sent.

    The message names what to fix (and the setting, for the size limit).
    """


class BroadcastRejected(BroadcastError):
    """The REST broadcast API answered with an HTTP error.

    ``status`` is the HTTP status, ``message`` the server's text (its ``message``, or the
    errors it listed), ``body`` the decoded JSON answer (``None`` when it was not JSON).
    """

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"broadcast refused with HTTP {status}: {message or '(no message)'}")
        self.status = status
        self.message = message
        self.body = body


class BroadcastUnauthorized(BroadcastRejected):
    """HTTP 401 / 403: the server key was refused (or the tenant is unknown or suspended)."""


class BroadcastInvalid(BroadcastRejected):
    """HTTP 422: the server would not take a message (blank fields, payload over its limit)."""


class BroadcastRateLimited(BroadcastRejected):
    """HTTP 429: the project's messages-per-second limit, or a batch too large for it."""


class LeaseLost(RealtimeError):
    """The worker could not renew its lease in time; another worker may be active now."""


class ConfigurationError(RealtimeError):
    """A setting is missing or malformed. The message names the setting to fix."""


class PrerequisiteError(ConfigurationError):
    """PostgreSQL cannot serve the local server's WAL reader (``wal_level`` is not
    ``logical``, the output plugin is missing or not allowed, the role lacks ``REPLICATION``,
    or every replication slot is taken). The message says what to change.

    ``setting`` names the database setting or privilege to fix.
    """

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting
