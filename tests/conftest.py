"""Fixtures of the broadcast, outbox, REST and model-broadcast tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio

from supa_realtime.devserver import DevServer


@pytest.fixture
def redis_prefix() -> str:
    """A Redis key prefix unique to the test."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def aredis(redis_server: str) -> AsyncIterator[Any]:
    client = redis.asyncio.Redis.from_url(redis_server)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def broadcast_settings(
    settings: Any, redis_server: str, redis_channel_layers: dict[str, Any], redis_prefix: str
) -> Callable[..., dict[str, Any]]:
    """``configure(server, **extra)``: point SUPA_REALTIME at the test Redis and ``server``."""

    def apply(server: DevServer | None = None, **extra: Any) -> dict[str, Any]:
        value: dict[str, Any] = {
            "URL": server.http_url if server is not None else "http://127.0.0.1:9",
            "KEY": server.service_role_key if server is not None else "k",
            "REDIS_URL": redis_server,
            "REDIS_PREFIX": redis_prefix,
            "SUBSCRIPTIONS": [],
            **extra,
        }
        settings.SUPA_REALTIME = value
        return value

    return apply
