"""The browser gateway: Supabase Realtime's protocol at ``/realtime/v1/websocket``, with
Django's users and permissions deciding who may join, broadcast, track presence and see
which tables' rows.

Modules: :mod:`.consumer` (``RealtimeConsumer``), :mod:`.routing`, :mod:`.tokens`
(``mint_token``), :mod:`.policy` (``authorize``), :mod:`.ratelimit`, :mod:`.hub`.
"""

from __future__ import annotations

from .tokens import mint_token, verify_token

__all__ = ["mint_token", "verify_token"]
