"""Run a :class:`DevServer` in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

from .server import DevServer

__all__ = ["run_until_signalled"]


async def run_until_signalled(
    server: DevServer, on_ready: Callable[[DevServer], None] | None = None
) -> None:
    """Start ``server``, call ``on_ready`` once it listens, stop it on SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with server:
            if on_ready is not None:
                on_ready(server)
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
