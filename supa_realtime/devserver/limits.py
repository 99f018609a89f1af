"""Limits of the local Realtime server (PROTOCOL.md §8), with Realtime's defaults.

Each limit gives the client-visible result Realtime gives; tests lower them to reach those
results quickly.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..phoenix import constants as c
from ..phoenix.join import (
    CHANNEL_LIMIT_REASON,
    PAYLOAD_SIZE_EXCEEDED,
    PRESENCE_RATE_MESSAGE,
    TRACK_SIZE_MESSAGE,
    payload_size,
)

__all__ = [
    "CHANNEL_LIMIT_REASON",
    "PAYLOAD_SIZE_EXCEEDED",
    "PRESENCE_RATE_MESSAGE",
    "TRACK_SIZE_MESSAGE",
    "Limits",
    "PresenceRateLimiter",
    "payload_size",
]

TOO_MANY_USERS = "Too many connected users"
REST_BATCH_TOO_BIG = "Too many messages to broadcast, please reduce the batch size"


@dataclass(frozen=True, slots=True)
class Limits:
    """Every limit the server enforces.

    Attributes:
        max_channels_per_client: joins one socket may hold; one more gets
            ``ChannelRateLimitReached: Too many channels``.
        presence_max_calls: presence pushes one channel may make per ``presence_window_s``;
            one more gets the ``system`` error ``Client presence rate limit exceeded`` and
            ``phx_close``.
        presence_window_s: the window of ``presence_max_calls``, in seconds.
        max_payload_kb: broadcast and track payload limit, in KB; a payload is over when its
            JSON size exceeds ``max_payload_kb * 1000 + 500`` bytes.
        max_frame_bytes: largest inbound websocket message; a larger one closes that
            connection with 1009.
        max_concurrent_users: sockets allowed at once (``None``: no limit); the next
            handshake gets HTTP 429 ``Too many connected users``.
        max_events_per_second: a REST batch with more messages than this gets HTTP 429.
    """

    max_channels_per_client: int = c.MAX_CHANNELS_PER_CLIENT
    presence_max_calls: int = c.PRESENCE_MAX_CALLS
    presence_window_s: float = c.PRESENCE_WINDOW_S
    max_payload_kb: int = c.MAX_PAYLOAD_KB
    max_frame_bytes: int = c.MAX_FRAME_BYTES
    max_concurrent_users: int | None = None
    max_events_per_second: int = 100

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_kb * 1000 + 500


class PresenceRateLimiter:
    """At most ``max_calls`` presence pushes in any ``window_s`` seconds (one per channel)."""

    __slots__ = ("_calls", "_clock", "max_calls", "window_s")

    def __init__(
        self, max_calls: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_calls = max_calls
        self.window_s = window_s
        self._clock = clock
        self._calls: deque[float] = deque()

    def allow(self) -> bool:
        """Count one call; ``False`` when it is over the limit."""
        now = self._clock()
        while self._calls and now - self._calls[0] >= self.window_s:
            self._calls.popleft()
        if len(self._calls) >= self.max_calls:
            return False
        self._calls.append(now)
        return True
