"""What every connection of one server shares: options, the hub, faults, live sockets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .faults import Faults
from .hub import Hub
from .limits import Limits

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Options", "ServerContext"]


@dataclass(frozen=True, slots=True)
class Options:
    """Behaviour switches of the server (the timing ones default to test-friendly values).

    Attributes:
        jwt_secret: HMAC secret every token must be signed with.
        limits: see :class:`~supa_realtime.devserver.limits.Limits`.
        idle_timeout: seconds without any inbound frame before a socket is closed (1000).
        connect_error_delay: seconds before a refused handshake is answered (Realtime: 2).
        join_error_delay: seconds before a join error reply is sent (Realtime: 5).
    """

    jwt_secret: str
    limits: Limits = field(default_factory=Limits)
    idle_timeout: float = 60.0
    connect_error_delay: float = 0.0
    join_error_delay: float = 0.0


class ServerContext:
    """Shared state of one server."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.hub = Hub()
        self.connections: set[Connection] = set()
        self.faults = Faults(self)
