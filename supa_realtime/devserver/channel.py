"""One channel join on the server: its parsed ``config`` and its live state (PROTOCOL.md §3.2)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..phoenix import constants as c
from ..phoenix.filters import Binding
from ..phoenix.message import Message, subtopic
from .limits import PresenceRateLimiter
from .presence import generated_key

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["GroupKey", "JoinConfig", "ServerChannel", "flexible_bool"]

logger = logging.getLogger(__name__)

GroupKey = tuple[bool, str]
"""A fan-out group: ``(private, subtopic)``. Public and private groups never mix."""

_ids = itertools.count(1)


def flexible_bool(value: Any, default: bool) -> bool:
    """Realtime's boolean coercion: a bool, or ``"true"``/``"false"`` in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value is not None:
        logger.info("InvalidJoinPayload: expected a boolean, got %s", type(value).__name__)
    return default


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class JoinConfig:
    """The parts of a join payload the server acts on. Invalid fields take their defaults."""

    ack: bool = False
    self_broadcast: bool = False
    presence_enabled: bool = False
    presence_key: str = ""
    private: bool = False
    postgres_changes: tuple[Any, ...] = ()
    access_token: str | None = None

    @classmethod
    def parse(cls, payload: Any) -> JoinConfig:
        payload = payload if isinstance(payload, dict) else {}
        config = payload.get("config")
        config = config if isinstance(config, dict) else {}
        broadcast = _section(config, "broadcast")
        presence = _section(config, "presence")
        key = presence.get("key")
        changes = config.get("postgres_changes")
        token = payload.get("user_token", payload.get("access_token"))
        return cls(
            ack=flexible_bool(broadcast.get("ack"), False),
            self_broadcast=flexible_bool(broadcast.get("self"), False),
            presence_enabled=flexible_bool(presence.get("enabled"), False),
            presence_key="" if key is None or isinstance(key, dict | list) else str(key),
            private=flexible_bool(config.get("private"), False),
            postgres_changes=tuple(x for x in changes if x is not None)
            if isinstance(changes, list)
            else (),
            access_token=token if isinstance(token, str) and not token.startswith("sb_") else None,
        )


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
        return Message(self.topic, event, payload, ref=None, join_ref=self.join_ref)

    def system(self, extension: str, status: str, text: str) -> Message:
        return self.push(
            c.SYSTEM,
            {"extension": extension, "status": status, "message": text, "channel": self.subtopic},
        )

    def close_message(self, event: str = c.PHX_CLOSE) -> Message:
        """``phx_close`` / ``phx_error``: the join_ref in both ref slots."""
        return Message(self.topic, event, {}, ref=self.join_ref, join_ref=self.join_ref)
