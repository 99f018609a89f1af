"""Tokens minted by Django for browsers and API clients of the gateway.

A token is an HS256 JWT, the shape Supabase Realtime clients already send as ``apikey``
or ``access_token``. It is signed with a key derived from ``SECRET_KEY`` by
:func:`django.utils.crypto.salted_hmac` (salt :data:`KEY_SALT`), so it is worthless to
Supabase and to any other Django site, and rotating ``SECRET_KEY`` revokes every token.

Claims::

    {"role": "authenticated" | "anon", "exp": <unix s>, "iat": <unix s>,
     "sub": "<user pk>" (absent for anonymous tokens),
     "topics": {"room:*": ["join", "broadcast", "presence"], ...}}

``topics`` maps topic patterns (``fnmatch`` style, matched against the subtopic, so
``room:*`` covers ``realtime:room:1``) to the actions the token grants on them; see
:mod:`supa_realtime.gateway.policy` for the action names.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Final

import jwt
from django.utils.crypto import salted_hmac

from ..phoenix.jwt_checks import TokenRejection, check_token

__all__ = [
    "KEY_SALT",
    "TokenClaims",
    "TokenRejection",
    "mint_token",
    "signing_key",
    "verify_token",
]

KEY_SALT: Final = "supa_realtime.gateway.tokens"
DEFAULT_TTL: Final = 3600.0


def signing_key(secret: str | None = None) -> bytes:
    """The HS256 key: a salted HMAC of ``SECRET_KEY`` (or ``secret``)."""
    return salted_hmac(KEY_SALT, "signing-key", secret=secret, algorithm="sha256").digest()


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """A verified gateway token.

    Attributes:
        role: ``"authenticated"`` or ``"anon"`` (any string a minter chose).
        exp: expiry, Unix seconds.
        sub: the user's primary key as a string, or ``None``.
        topics: topic pattern → granted actions.
    """

    role: str
    exp: float
    sub: str | None = None
    topics: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def grants(self, subtopic: str, action: str) -> bool:
        """Whether the token allows ``action`` on ``subtopic`` (without ``realtime:``)."""
        for pattern, actions in self.topics.items():
            if fnmatchcase(subtopic, pattern) and (action in actions or "*" in actions):
                return True
        return False


def mint_token(
    user: Any = None,
    *,
    topics: Mapping[str, Iterable[str]] | None = None,
    ttl: float = DEFAULT_TTL,
    secret: str | None = None,
) -> str:
    """Mint a gateway token for ``user`` (``None`` or anonymous: an ``anon`` token).

    Args:
        user: a Django user, or ``None``.
        topics: topic pattern → actions granted, e.g. ``{"room:*": ["join", "presence"]}``.
            Actions: ``"join"``, ``"broadcast"``, ``"presence"``,
            ``"postgres_changes:<schema>.<table>"`` or ``"*"``.
        ttl: seconds until the token expires.
        secret: sign with this instead of ``settings.SECRET_KEY``.

    Returns:
        The token, to pass as the Realtime client's ``apikey`` or ``access_token``.
    """
    now = int(time.time())
    claims: dict[str, Any] = {"iat": now, "exp": int(now + ttl), "role": "anon"}
    if user is not None and getattr(user, "is_authenticated", False):
        claims["role"] = "authenticated"
        claims["sub"] = str(user.pk)
    claims["topics"] = {
        str(p): sorted({str(a) for a in acts}) for p, acts in (topics or {}).items()
    }
    return jwt.encode(claims, signing_key(secret), algorithm="HS256")


def verify_token(
    token: Any, *, secret: str | None = None, now: float | None = None
) -> TokenClaims | TokenRejection:
    """Check a token; its claims, or the :class:`TokenRejection` saying why it was refused."""
    checked = check_token(token, signing_key(secret), now=now)
    if isinstance(checked, TokenRejection):
        return checked
    topics_claim = checked.get("topics") or {}
    topics: dict[str, frozenset[str]] = {}
    if isinstance(topics_claim, dict):
        for pattern, actions in topics_claim.items():
            if isinstance(actions, list):
                topics[str(pattern)] = frozenset(str(a) for a in actions)
    sub = checked.get("sub")
    return TokenClaims(
        role=str(checked["role"]),
        exp=float(checked["exp"]),
        sub=None if sub is None else str(sub),
        topics=topics,
    )
