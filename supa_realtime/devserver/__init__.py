"""A local Supabase Realtime server for development and tests.

It speaks the same wire protocol as Supabase Realtime (PROTOCOL.md), so the official
clients and ours connect to it unchanged::

    from supa_realtime.devserver import DevServer

    async with DevServer() as server:
        print(server.ws_url, server.anon_key)
        await server.emit_change({...})
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
