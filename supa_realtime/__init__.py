"""supa_realtime: a Django site as a full member of a Supabase Realtime deployment.

Importing this package imports no Django module, so the sans-I/O protocol core
(:mod:`supa_realtime.phoenix`) can be used on its own.
"""

from __future__ import annotations

from supa_realtime.groups import group_for

__all__ = ["__version__", "group_for"]

__version__ = "0.1.0.dev0"
