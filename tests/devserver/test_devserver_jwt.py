"""Token checks and their three wordings (PROTOCOL.md §1.3, §3.5, §3.7)."""

from __future__ import annotations

import jwt as pyjwt
import pytest

from supa_realtime.devserver.jwt import (
    LOCAL_DEV_JWT_SECRET,
    TokenRejection,
    check_token,
    mint_key,
    mint_token,
)

SECRET = LOCAL_DEV_JWT_SECRET
NOW = 1_800_000_000


def test_minted_key_passes_with_its_claims() -> None:
    claims = check_token(mint_key(SECRET, "anon", sub="u1"), SECRET)
    assert isinstance(claims, dict)
    assert (claims["role"], claims["sub"], claims["iss"]) == ("anon", "u1", "supabase-demo")


@pytest.mark.parametrize(
    ("token", "code", "detail", "handshake"),
    [
        (
            mint_token(SECRET, {"role": "anon", "exp": NOW - 12}),
            "InvalidJWTToken",
            "Token has expired 12 seconds ago",
            "Token has expired",
        ),
        (
            mint_token(SECRET, {"role": "anon", "exp": NOW}),
            "InvalidJWTToken",
            "Token has expired 0 seconds ago",
            "Token has expired",
        ),
        (
            mint_token(SECRET, {"exp": NOW + 60}),
            "InvalidJWTToken",
            "Fields `role` and `exp` are required in JWT",
            "Fields `role` and `exp` are required in JWT",
        ),
        (
            mint_token(SECRET, {"role": "anon"}),
            "InvalidJWTToken",
            "Fields `role` and `exp` are required in JWT",
            "Fields `role` and `exp` are required in JWT",
        ),
        (
            mint_token(SECRET, {"role": "anon", "exp": "soon"}),
            "InvalidJWTToken",
            "Token expiration time is invalid",
            "Token expiration time is invalid",
        ),
        (
            "sb_secret_abcdef",
            "MalformedJWT",
            "The token provided is not a valid JWT",
            "The token provided is not a valid JWT",
        ),
        (
            "a.b.c",
            "MalformedJWT",
            "The token provided is not a valid JWT",
            "The token provided is not a valid JWT",
        ),
        (
            None,
            "MalformedJWT",
            "The token provided is not a valid JWT",
            "The token provided is not a valid JWT",
        ),
        (
            mint_token("x" * 40, {"role": "anon", "exp": NOW + 60}),
            "JwtSignatureError",
            "Failed to validate JWT signature",
            "Failed to validate JWT signature",
        ),
        (
            pyjwt.encode({"role": "anon", "exp": NOW + 60}, None, algorithm="none"),
            "JwtSignerError",
            "Failed to generate JWT signer, check your JWT secret or JWKS configuration",
            "Failed to generate JWT signer, check your JWT secret or JWKS configuration",
        ),
    ],
    ids=[
        "expired",
        "expired-now",
        "no-role",
        "no-exp",
        "exp-not-number",
        "sb-key",
        "garbage",
        "not-a-string",
        "bad-signature",
        "alg-none",
    ],
)
def test_rejections(token: object, code: str, detail: str, handshake: str) -> None:
    rejection = check_token(token, SECRET, now=NOW)
    assert rejection == TokenRejection(code, detail, handshake)
    assert rejection.join_reason == f"{code}: {detail}"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_algorithms_accepted(alg: str) -> None:
    secret = "k" * 64  # RFC 7518 §3.2: at least the hash's output size, for HS512 too
    token = mint_token(secret, {"role": "authenticated", "exp": NOW + 60}, algorithm=alg)
    assert check_token(token, secret, now=NOW) == {"role": "authenticated", "exp": NOW + 60}


def test_rejection_texts_never_hold_the_token() -> None:
    token = mint_token("y" * 40, {"role": "anon", "exp": NOW + 60})
    rejection = check_token(token, SECRET, now=NOW)
    assert isinstance(rejection, TokenRejection)
    assert token not in repr(rejection)
