"""supa_realtime: a Django site as a full member of a Supabase Realtime deployment.

Importing this package imports no Django module, so the sans-I/O protocol core
(:mod:`supa_realtime.phoenix`) can be used on its own. ``broadcast`` and ``abroadcast``
are loaded on first use (they need Django).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supa_realtime.groups import group_for

if TYPE_CHECKING:
    from supa_realtime.broadcast import abroadcast, broadcast

__all__ = ["__version__", "abroadcast", "broadcast", "group_for"]

__version__ = "0.1.0.dev0"

_LAZY = {"broadcast", "abroadcast"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module("supa_realtime.broadcast")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
