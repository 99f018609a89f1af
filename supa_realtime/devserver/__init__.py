"""A local Supabase Realtime server for development and tests.

It speaks the Realtime wire protocol (PROTOCOL.md) closely enough that the official clients
(``realtime`` for Python, ``@supabase/realtime-js``) and ours connect to it unchanged::

    from supa_realtime.devserver import DevServer

    async with DevServer() as server:          # a free port on 127.0.0.1
        client = AsyncRealtimeClient(server.ws_url, server.anon_key)
        ...
        await server.emit_change({...})         # a database change (PROTOCOL.md §4.3)
        await server.broadcast("room1", "event", {"x": 1})
        await server.faults.close_all(1012)    # and the other faults of :class:`Faults`

``python manage.py realtime_devserver`` runs one in the foreground (optionally fed by the
WAL of a PostgreSQL database); ``supa_realtime.testing`` has pytest fixtures for it.

Modules: :mod:`.server` (``DevServer``), :mod:`.app` (ASGI routing and REST),
:mod:`.connection` (one socket), :mod:`.hub` (groups and fan-out), :mod:`.presence`,
:mod:`.jwt`, :mod:`.limits`, :mod:`.faults`, :mod:`.runner`; the WAL reader lives in
:mod:`.wal`.
"""

from .faults import Faults
from .jwt import LOCAL_DEV_JWT_SECRET, TokenRejection, check_token, mint_key, mint_token
from .limits import Limits
from .server import DevServer

__all__ = [
    "LOCAL_DEV_JWT_SECRET",
    "DevServer",
    "Faults",
    "Limits",
    "TokenRejection",
    "check_token",
    "mint_key",
    "mint_token",
]
