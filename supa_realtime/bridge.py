"""Interest bookkeeping of dynamic bridging: which topics some gateway process still wants.

Gateway processes (:mod:`supa_realtime.gateway.hub`) announce ``interest`` in a topic on its
first local join, repeat it every ``BRIDGE_REFRESH`` seconds, and withdraw it after the last
local leave. A process that dies withdraws nothing, so every announcement expires after
``ttl`` seconds unless repeated. A topic nobody wants any more is left only after ``linger``
seconds, so a page reload does not leave and rejoin upstream.

This module is pure (no I/O, no clock of its own): the worker passes ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Interest"]


class Interest:
    """Per topic, the processes interested in it and until when.

    Args:
        ttl: seconds an announcement lasts without being repeated.
        linger: seconds a topic stays wanted after its last interest ended.
    """

    def __init__(self, *, ttl: float, linger: float) -> None:
        self.ttl = ttl
        self.linger = linger
        self._until: dict[str, dict[str, float]] = {}
        self._ended: dict[str, float] = {}

    def update(self, topic: str, process: str, interest: bool, now: float) -> None:
        """Record one announcement (``interest`` True) or withdrawal (False)."""
        processes = self._until.setdefault(topic, {})
        if interest:
            processes[process] = now + self.ttl
            self._ended.pop(topic, None)
            return
        processes.pop(process, None)
        if not processes:
            del self._until[topic]
            self._ended[topic] = now

    def _expire(self, topic: str, now: float) -> None:
        processes = self._until.get(topic)
        if processes is None:
            return
        expired = [p for p, until in processes.items() if until <= now]
        if not expired:
            return
        last = max(processes[p] for p in expired)
        for process in expired:
            del processes[process]
        if not processes:
            del self._until[topic]
            self._ended[topic] = last

    def interested(self, topic: str, now: float) -> bool:
        """Whether some live process wants ``topic`` now."""
        self._expire(topic, now)
        return topic in self._until

    def processes(self, topic: str, now: float) -> frozenset[str]:
        """The processes whose interest in ``topic`` is live."""
        self._expire(topic, now)
        return frozenset(self._until.get(topic, {}))

    def due(self, topics: Iterable[str], now: float) -> list[str]:
        """Those of ``topics`` (the joined ones) that nobody wanted for ``linger`` seconds."""
        out = []
        for topic in topics:
            self._expire(topic, now)
            if topic in self._until:
                continue
            ended = self._ended.get(topic)
            if ended is None:
                # Never announced here (e.g. after a worker takeover): start the linger now.
                self._ended[topic] = ended = now
            if now - ended >= self.linger:
                out.append(topic)
        return out

    def forget(self, topic: str) -> None:
        """Drop what is known about ``topic`` once it is left."""
        self._until.pop(topic, None)
        self._ended.pop(topic, None)
