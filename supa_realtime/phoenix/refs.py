"""Message refs: a monotonic counter rendered as strings (PROTOCOL.md, "Terms")."""

from __future__ import annotations

__all__ = ["RefCounter"]


class RefCounter:
    """Hands out ``"1"``, ``"2"``, ... for the lifetime of a client, across reconnects.

    Refs never repeat, so a reply that arrives late (after a reconnect or a rejoin) can
    never be mistaken for the answer to a newer message.
    """

    __slots__ = ("_last",)

    def __init__(self, start: int = 0) -> None:
        self._last = start

    def next(self) -> str:
        """The next ref."""
        self._last += 1
        return str(self._last)

    @property
    def last(self) -> str | None:
        """The most recent ref handed out, or ``None`` before the first."""
        return str(self._last) if self._last else None
