"""One channel join on the server: its parsed ``config`` and its live state (PROTOCOL.md §3.2)."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..phoenix import constants as c
from ..phoenix.filters import Binding
from ..phoenix.join import JoinConfig, channel_push, close_push, flexible_bool, system_push
from ..phoenix.message import Message, subtopic
from ..phoenix.server_presence import generated_key
from .limits import PresenceRateLimiter

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["GroupKey", "JoinConfig", "ServerChannel", "flexible_bool"]

GroupKey = tuple[bool, str]
"""A fan-out group: ``(private, subtopic)``. Public and private groups never mix."""

_ids = itertools.count(1)


@dataclass(eq=False, slots=True)
class ServerChannel:
    """A joined channel: one ``phx_join`` on one socket, until it leaves or closes."""

    conn: Connection
    topic: str
    join_ref: str | None
    config: JoinConfig
    token: str
    limiter: PresenceRateLimiter
    bindings: list[Binding] = field(default_factory=list)
    id: int = field(default_factory=lambda: next(_ids))
    presence_key: str = ""
    expiry: asyncio.TimerHandle | None = None

    def __post_init__(self) -> None:
        if not self.presence_key:
            self.presence_key = self.config.presence_key or generated_key()

    @property
    def subtopic(self) -> str:
        return subtopic(self.topic)

    @property
    def group(self) -> GroupKey:
        return (self.config.private, self.subtopic)

    def push(self, event: str, payload: Any) -> Message:
        """A push the channel sends itself: ``[join_ref, null, ...]`` (PROTOCOL.md §1.6)."""
        return channel_push(self.topic, self.join_ref, event, payload)

    def system(self, extension: str, status: str, text: str) -> Message:
        return system_push(self.topic, self.join_ref, extension, status, text)

    def close_message(self, event: str = c.PHX_CLOSE) -> Message:
        """``phx_close`` / ``phx_error``: the join_ref in both ref slots."""
        return close_push(self.topic, self.join_ref, event)
