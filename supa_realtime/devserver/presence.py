"""Server-side presence, as Phoenix.Tracker keeps it for Realtime (PROTOCOL.md §6).

State per fan-out group: ``key → owner → meta``. An *owner* is one channel join; each join
tracks at most one meta, under its join's key. Every change returns the ``presence_diff``
payload to fan out (``{"joins": {...}, "leaves": {...}}``), or ``None`` when nothing
changed. Plain data in, plain data out: the hub does the sending.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from ..phoenix.server_presence import diff_payload, generated_key, new_phx_ref, tracked_meta

__all__ = ["PresenceRegistry", "generated_key", "new_phx_ref"]


@dataclass(slots=True)
class _Entry:
    payload: dict[str, Any]
    meta: dict[str, Any]


_diff = diff_payload


class PresenceRegistry:
    """Presence of every group of one server."""

    def __init__(self) -> None:
        self._groups: dict[Hashable, dict[str, dict[int, _Entry]]] = {}

    def track(
        self, group: Hashable, key: str, owner: int, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Track ``payload`` for ``owner`` under ``key``; the diff, or ``None`` for a no-op.

        A second track by the same owner is an update: one diff holding a join of the new
        meta (with ``phx_ref_prev``) and a leave of the old one. The same payload again
        changes nothing.
        """
        owners = self._groups.setdefault(group, {}).setdefault(key, {})
        old = owners.get(owner)
        if old is not None and old.payload == payload:
            return None
        meta = tracked_meta(payload, old.meta if old is not None else None)
        owners[owner] = _Entry(dict(payload), meta)
        leaves = {key: [old.meta]} if old is not None else {}
        return _diff({key: [meta]}, leaves)

    def untrack(self, group: Hashable, key: str, owner: int) -> dict[str, Any] | None:
        """Remove ``owner``'s meta; the leave diff, or ``None`` if it tracked nothing."""
        keys = self._groups.get(group)
        if keys is None:
            return None
        owners = keys.get(key)
        if owners is None or owner not in owners:
            return None
        entry = owners.pop(owner)
        if not owners:
            del keys[key]
            if not keys:
                del self._groups[group]
        return _diff({}, {key: [entry.meta]})

    def state(self, group: Hashable) -> dict[str, Any]:
        """The ``presence_state`` payload of ``group``."""
        keys = self._groups.get(group, {})
        return {k: {"metas": [e.meta for e in owners.values()]} for k, owners in keys.items()}

    def is_tracked(self, group: Hashable, key: str, owner: int) -> bool:
        return owner in self._groups.get(group, {}).get(key, {})
