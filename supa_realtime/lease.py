"""The worker lease: at most one active worker per deployment, the others on standby.

Theory of operation
-------------------
The lease is one Redis key, ``<prefix>:worker:lease``, whose value names its holder and
which expires after ``ttl`` seconds. A worker takes it with ``SET key holder NX PX ttl``;
the holder renews it every ``ttl / 3`` (a Lua compare-and-expire, so a worker never renews
a lease another one took) and deletes it on a clean stop (compare-and-delete).

A standby worker tries to take the lease every ``ttl / 3``. It does not connect upstream
while it waits, so it never relays the active worker's broadcasts back into the groups.

Takeover bound: when the holder stops cleanly the lease is free at once and a standby takes
it within ``ttl / 3``. When the holder dies, the key expires ``ttl`` after the last renewal,
so a standby takes over within ``ttl + ttl / 3`` (about 13.3 s with the default 10 s).

Safety: the holder counts itself active only while its last successful renewal is younger
than ``2 * ttl / 3``; past that (Redis unreachable, a stalled loop) :meth:`Lease.keep`
raises :class:`~supa_realtime.exceptions.LeaseLost` and the worker stops, well before the
key can expire and another worker take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import Any, Final

from redis.exceptions import RedisError

from .exceptions import LeaseLost

__all__ = ["Lease", "new_holder_id"]

logger = logging.getLogger(__name__)

_RENEW_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def new_holder_id() -> str:
    """A name for this worker process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One worker's hold on the deployment's lease.

    Args:
        redis: an asyncio Redis client.
        key: the lease key.
        ttl: seconds the lease lives without a renewal.
        holder: this worker's name (stored as the key's value).
    """

    def __init__(self, redis: Any, key: str, ttl: float = 10.0, holder: str | None = None) -> None:
        self.redis = redis
        self.key = key
        self.ttl = ttl
        self.holder = holder or new_holder_id()
        self._renewed_at: float | None = None
        #: True while waiting for a lease another worker holds.
        self.standby = False

    @property
    def interval(self) -> float:
        return self.ttl / 3

    async def try_acquire(self) -> bool:
        """Take the lease if it is free (or already ours)."""
        ttl_ms = int(self.ttl * 1000)
        if await self.redis.set(self.key, self.holder, nx=True, px=ttl_ms):
            self._renewed_at = time.monotonic()
            return True
        return await self.renew()

    async def renew(self) -> bool:
        """Extend the lease if this worker holds it."""
        ok = await self.redis.eval(_RENEW_LUA, 1, self.key, self.holder, int(self.ttl * 1000))
        if ok:
            self._renewed_at = time.monotonic()
        return bool(ok)

    async def holder_now(self) -> str | None:
        value = await self.redis.get(self.key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def wait(self, stop: asyncio.Event) -> bool:
        """Wait on standby until the lease is ours (True) or ``stop`` is set (False)."""
        announced = False
        while not stop.is_set():
            try:
                if await self.try_acquire():
                    self.standby = False
                    logger.info("took the worker lease %s (holder %s)", self.key, self.holder)
                    return True
                self.standby = True
                if not announced:
                    logger.info(
                        "standby: the worker lease is held by %s; waiting for it",
                        await self.holder_now(),
                    )
                    announced = True
            except (OSError, RedisError) as exc:
                logger.warning("standby: cannot reach Redis for the lease (%s)", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
        return False

    async def keep(self) -> None:
        """Renew the lease until cancelled; raise :class:`LeaseLost` when it is no longer safe
        to act as the holder."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                if not await self.renew():
                    raise LeaseLost(f"the worker lease {self.key} was taken by another worker")
            except (OSError, RedisError) as exc:
                logger.warning("cannot renew the worker lease (%s)", exc)
            renewed = self._renewed_at or 0.0
            if time.monotonic() - renewed > 2 * self.ttl / 3:
                raise LeaseLost(
                    f"the worker lease {self.key} could not be renewed for "
                    f"{time.monotonic() - renewed:.1f} s (ttl {self.ttl:g} s); stopping"
                )

    async def release(self) -> None:
        """Give the lease up (only if this worker still holds it)."""
        try:
            await self.redis.eval(_RELEASE_LUA, 1, self.key, self.holder)
        except (OSError, RedisError) as exc:
            logger.warning("could not release the worker lease (%s); it expires by itself", exc)
        self._renewed_at = None
