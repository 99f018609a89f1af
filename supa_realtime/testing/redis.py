"""A real ``redis-server`` for tests, a channel layer on it, and a group capture helper.

Fixtures (available once ``pytest_plugins = ["supa_realtime.testing"]`` is in a conftest):

``redis_server`` (session)
    Starts ``redis-server`` on a free 127.0.0.1 port in a temporary folder, with persistence
    off, and yields its URL (``redis://127.0.0.1:<port>/0``). Stopped at the end of the session.
``channel_layer_config``
    A ``CHANNEL_LAYERS`` entry for that server with a prefix unique to the test.
``channel_layer``
    A :class:`channels_redis.core.RedisChannelLayer` built from ``channel_layer_config``;
    flushed and closed after the test.
``redis_channel_layers``
    Points Django's ``CHANNEL_LAYERS["default"]`` at ``channel_layer_config`` for one test
    (through pytest-django's ``settings`` fixture), so code that calls
    ``get_channel_layer()`` shares the ``channel_layer`` fixture's prefix.
``capture_group``
    ``capture = await capture_group("group-name")`` joins a fresh channel to the group and
    collects every message that reaches it; ``await capture.wait_for(n)`` waits (with a
    deadline) until ``n`` messages arrived.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer

from supa_realtime.layers import unpack

__all__ = [
    "GroupCapture",
    "RedisServer",
    "capture_group",
    "channel_layer",
    "channel_layer_config",
    "free_port",
    "redis_channel_layers",
    "redis_server",
]

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3
_STOP_TYPE = "supa_realtime.capture.stop"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` process on 127.0.0.1 in its own folder, persistence off."""

    def __init__(self, directory: Path, executable: str | None = None) -> None:
        self.directory = directory
        found = executable or shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(found).exists():
            raise FileNotFoundError(
                "redis-server is not installed; run `apt-get install -y redis-server` "
                "(./dev does it for you)"
            )
        self.executable = found
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING; retries on a port race."""
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = free_port()
            log = (self.directory / "redis.log").open("ab")
            with log:
                self.process = subprocess.Popen(
                    [
                        self.executable,
                        "--port", str(self.port),
                        "--bind", "127.0.0.1",
                        "--dir", str(self.directory),
                        "--save", "",
                        "--appendonly", "no",
                        "--protected-mode", "yes",
                        "--daemonize", "no",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )  # fmt: skip
            if self._wait_ready():
                logger.info("redis-server ready at %s (pid %d)", self.url, self.process.pid)
                return
            logger.warning("redis-server on port %d did not start (attempt %d)", self.port, attempt)
            self.stop()
        log_text = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"redis-server did not start; its log ends with:\n{log_text}")

    def _wait_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.ConnectionError:
                    pass  # not listening yet; poll again until the deadline
                time.sleep(0.02)
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Terminate the server and wait for it (kill if it does not stop in time)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            logger.warning("redis-server (pid %d) ignored SIGTERM; killing it", process.pid)
            process.kill()
            process.wait(STOP_TIMEOUT)


class GroupCapture:
    """Joins a fresh channel to a group and records every message that reaches it.

    Use :meth:`start` and :meth:`stop` (or the ``capture_group`` fixture, which does both).
    """

    def __init__(self, layer: Any, group: str) -> None:
        self.layer = layer
        self.group = group
        self.channel = ""
        self.messages: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stop_token = uuid.uuid4().hex
        self._error: Exception | None = None

    async def start(self) -> None:
        """Create the channel, add it to the group and start receiving."""
        self.channel = await self.layer.new_channel("capture.")
        await self.layer.group_add(self.group, self.channel)
        self._task = asyncio.create_task(self._receive(), name=f"capture {self.group}")

    async def _receive(self) -> None:
        try:
            while True:
                message = await self.layer.receive(self.channel)
                if message.get("type") == _STOP_TYPE and message.get("token") == self._stop_token:
                    return
                async with self._changed:
                    # Batches from the worker are unpacked, as consumers see them.
                    self.messages.extend(unpack(message))
                    self._changed.notify_all()
        except Exception as exc:
            logger.exception("capturing group %r failed", self.group)
            async with self._changed:
                self._error = exc
                self._changed.notify_all()
            raise

    async def wait_for(
        self,
        count: int,
        timeout: float = 10.0,  # noqa: ASYNC109 - a deadline per call reads best in tests
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` messages arrived; return the first ``count``.

        Raises:
            TimeoutError: fewer arrived within ``timeout`` seconds (the message says how many).
        """
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(
                        lambda: len(self.messages) >= count or self._error is not None
                    ),
                    timeout,
                )
            except TimeoutError:
                raise TimeoutError(
                    f"group {self.group!r}: {len(self.messages)} of {count} messages "
                    f"within {timeout:g} s; got {self.messages!r}"[:2000]
                ) from None
            if len(self.messages) < count:
                raise RuntimeError(f"capturing group {self.group!r} failed") from self._error
            return self.messages[:count]

    async def stop(self) -> None:
        """Stop receiving and leave the group."""
        task, self._task = self._task, None
        if task is not None:
            # Ask the receive loop to return rather than cancelling it inside a Redis read
            # (a cancel racing redis-py's read timeout surfaces as a TimeoutError).
            if not task.done():
                await self.layer.send(self.channel, {"type": _STOP_TYPE, "token": self._stop_token})
                done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
                if not done:
                    logger.warning(
                        "capture of %r did not stop within %g s; cancelling",
                        self.group,
                        STOP_TIMEOUT,
                    )
                    task.cancel()
                    await asyncio.wait({task})
            # A failure was logged with its traceback by _receive and raised by wait_for;
            # reading it here marks it as retrieved.
            if not task.cancelled():
                task.exception()
        if self.channel:
            await self.layer.group_discard(self.group, self.channel)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A running ``redis-server`` on 127.0.0.1 for the whole session; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="supa-realtime-redis-") as directory:
        server = RedisServer(Path(directory))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture
def channel_layer_config(redis_server: str) -> dict[str, Any]:
    """A ``CHANNEL_LAYERS`` entry on the test Redis, with a prefix unique to this test."""
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # Longer than channels_redis's 5 s blocking receive (supa_realtime.W004).
            "hosts": [{"address": redis_server, "socket_timeout": 30}],
            "prefix": f"test-{uuid.uuid4().hex[:12]}",
        },
    }


@pytest_asyncio.fixture
async def channel_layer(channel_layer_config: dict[str, Any]) -> AsyncIterator[Any]:
    """A ``RedisChannelLayer`` on the test Redis; flushed and closed after the test."""
    layer = RedisChannelLayer(**channel_layer_config["CONFIG"])
    try:
        yield layer
    finally:
        await layer.flush()
        await layer.close_pools()


@pytest_asyncio.fixture
async def redis_channel_layers(
    settings: Any, channel_layer_config: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    """Point ``CHANNEL_LAYERS["default"]`` at the test Redis for one test.

    The layer Channels builds for it during the test has its connections closed afterwards.
    """
    settings.CHANNEL_LAYERS = {"default": channel_layer_config}
    try:
        yield channel_layer_config
    finally:
        layer = channel_layers.backends.get(DEFAULT_CHANNEL_LAYER)
        if layer is not None:
            await layer.close_pools()


@pytest_asyncio.fixture
async def capture_group(
    channel_layer: Any,
) -> AsyncIterator[Callable[[str], Awaitable[GroupCapture]]]:
    """``capture = await capture_group(group)``: record what reaches a group during the test."""
    captures: list[GroupCapture] = []

    async def start(group: str) -> GroupCapture:
        capture = GroupCapture(channel_layer, group)
        captures.append(capture)
        await capture.start()
        return capture

    try:
        yield start
    finally:
        for capture in captures:
            await capture.stop()
