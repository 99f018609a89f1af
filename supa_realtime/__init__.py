"""supa_realtime: a Django site as a full member of a Supabase Realtime deployment."""

from __future__ import annotations

__version__ = "0.1.0.dev0"
