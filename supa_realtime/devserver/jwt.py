"""JWTs of the local Realtime server: minting helpers, and the checks of PROTOCOL.md §1.3 /
§3.5 (shared with the Django gateway, in :mod:`supa_realtime.phoenix.jwt_checks`).
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from ..phoenix.jwt_checks import ALGORITHMS, TokenRejection, check_token

__all__ = [
    "ALGORITHMS",
    "LOCAL_DEV_JWT_SECRET",
    "TokenRejection",
    "check_token",
    "mint_key",
    "mint_token",
]

LOCAL_DEV_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
"""The JWT secret the Supabase CLI uses for local stacks. It is public knowledge: use it for
local development and tests only, never for anything reachable from another machine."""


def mint_token(secret: str, claims: dict[str, Any], *, algorithm: str = "HS256") -> str:
    """Sign ``claims`` with ``secret`` (HS256 unless told otherwise)."""
    return jwt.encode(claims, secret, algorithm=algorithm)


def mint_key(secret: str, role: str, ttl: float = 10 * 365 * 24 * 3600, **claims: Any) -> str:
    """An API key or access token for ``role`` that expires ``ttl`` seconds from now.

    Args:
        secret: the HMAC secret the server was started with.
        role: the ``role`` claim, e.g. ``"anon"``, ``"authenticated"``, ``"service_role"``.
        ttl: seconds until ``exp`` (negative gives an already expired token).
        **claims: more claims, e.g. ``sub="user-1"``.
    """
    now = int(time.time())
    body: dict[str, Any] = {"iss": "supabase-demo", "role": role, "iat": now, "exp": int(now + ttl)}
    body.update(claims)
    return mint_token(secret, body)
