"""Gateway tokens: minted by Django, checked with Realtime's texts, grants by pattern."""

from __future__ import annotations

import time
from typing import Any

import jwt

from supa_realtime.gateway.tokens import TokenClaims, TokenRejection, mint_token, verify_token


class _User:
    is_authenticated = True
    pk = 42


def test_mint_and_verify_round_trip() -> None:
    token = mint_token(_User(), topics={"room:*": ["join", "presence"]}, ttl=60)
    claims = verify_token(token)
    assert isinstance(claims, TokenClaims)
    assert claims.role == "authenticated"
    assert claims.sub == "42"
    assert claims.exp > time.time()
    assert claims.grants("room:1", "join")
    assert claims.grants("room:1", "presence")
    assert not claims.grants("room:1", "broadcast")
    assert not claims.grants("lobby", "join")


def test_anonymous_token() -> None:
    claims = verify_token(mint_token(None))
    assert isinstance(claims, TokenClaims)
    assert claims.role == "anon"
    assert claims.sub is None
    assert not claims.grants("room:1", "join")


def test_rejections_use_realtime_texts() -> None:
    expired = verify_token(mint_token(None, ttl=-3), now=time.time())
    assert isinstance(expired, TokenRejection)
    assert expired.join_reason.startswith("InvalidJWTToken: Token has expired ")
    assert expired.handshake == "Token has expired"
    other_site = mint_token(None, secret="another-site-secret-key-with-enough-length")
    forged = verify_token(other_site)
    assert isinstance(forged, TokenRejection)
    assert forged.detail == "Failed to validate JWT signature"
    assert isinstance(verify_token("nope"), TokenRejection)


def test_the_key_depends_on_secret_key(settings: Any) -> None:
    token = mint_token(None)
    settings.SECRET_KEY = "a-rotated-secret-key-for-this-one-test"
    assert isinstance(verify_token(token), TokenRejection)


def test_a_supabase_style_token_is_not_accepted() -> None:
    supabase = jwt.encode(
        {"role": "anon", "exp": int(time.time()) + 60},
        "super-secret-jwt-token-with-at-least-32-characters-long",
        algorithm="HS256",
    )
    assert isinstance(verify_token(supabase), TokenRejection)
