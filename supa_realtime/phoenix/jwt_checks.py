"""JWT checks with the exact texts of PROTOCOL.md §1.3 / §3.5, for every server we ship.

Realtime verifies every token three times in a socket's life: at the handshake (HTTP 401
with ``{"error": ...}``), at each join (``{"reason": "<Code>: <text>"}``) and on each
``access_token`` push (a ``system`` error). The three places word the same failure
differently, so :func:`check_token` returns one :class:`TokenRejection` that knows all
three wordings.

Only HMAC tokens (HS256/384/512) are accepted, like a tenant without JWKS. Token values
never appear in any text produced here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

__all__ = ["ALGORITHMS", "TokenRejection", "check_token"]

ALGORITHMS = ("HS256", "HS384", "HS512")

_MISSING_CLAIMS = "Fields `role` and `exp` are required in JWT"
_MALFORMED = "The token provided is not a valid JWT"
_BAD_SIGNATURE = "Failed to validate JWT signature"
_NO_SIGNER = "Failed to generate JWT signer, check your JWT secret or JWKS configuration"
_BAD_EXP = "Token expiration time is invalid"


@dataclass(frozen=True, slots=True)
class TokenRejection:
    """Why a token was refused, worded for each place Realtime reports it.

    Attributes:
        code: the join error code, e.g. ``"InvalidJWTToken"``.
        detail: the text after the code, e.g. ``"Token has expired 12 seconds ago"``; this is
            also the ``system`` message text after an ``access_token`` push.
        handshake: the ``error`` text of the HTTP 401 answer to the websocket upgrade.
    """

    code: str
    detail: str
    handshake: str

    @property
    def join_reason(self) -> str:
        """The ``reason`` of a join error reply."""
        return f"{self.code}: {self.detail}"


def check_token(
    token: Any, secret: str | bytes, *, now: float | None = None
) -> dict[str, Any] | TokenRejection:
    """Verify ``token``; return its claims, or the :class:`TokenRejection` explaining why not.

    Args:
        token: the candidate token (any JSON value; only strings can pass).
        secret: the HMAC secret.
        now: the current Unix time (tests pass a fixed one).
    """
    if not isinstance(token, str) or token.count(".") != 2:
        return TokenRejection("MalformedJWT", _MALFORMED, _MALFORMED)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        return TokenRejection("MalformedJWT", _MALFORMED, _MALFORMED)
    if header.get("alg") not in ALGORITHMS:
        return TokenRejection("JwtSignerError", _NO_SIGNER, _NO_SIGNER)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=list(ALGORITHMS),
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError:
        return TokenRejection("JwtSignatureError", _BAD_SIGNATURE, _BAD_SIGNATURE)
    except jwt.InvalidTokenError:
        return TokenRejection("MalformedJWT", _MALFORMED, _MALFORMED)
    if not isinstance(claims, dict) or "role" not in claims or "exp" not in claims:
        return TokenRejection("InvalidJWTToken", _MISSING_CLAIMS, _MISSING_CLAIMS)
    exp = claims["exp"]
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return TokenRejection("InvalidJWTToken", _BAD_EXP, _BAD_EXP)
    iat = claims.get("iat")
    if iat is not None and (isinstance(iat, bool) or not isinstance(iat, int | float)):
        return TokenRejection("MalformedJWT", _MALFORMED, _MALFORMED)
    current = time.time() if now is None else now
    if exp <= current:
        ago = int(current - exp)
        return TokenRejection(
            "InvalidJWTToken", f"Token has expired {ago} seconds ago", "Token has expired"
        )
    return claims
