"""Run a :class:`DevServer` in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from typing import Any

from .server import DevServer

__all__ = ["run_until_signalled"]


async def run_until_signalled(
    server: DevServer,
    on_ready: Callable[[DevServer], None] | None = None,
    companions: Sequence[contextlib.AbstractAsyncContextManager[Any]] = (),
) -> None:
    """Start ``server``, then each companion; stop them all, in reverse, on SIGINT/SIGTERM.

    Args:
        server: the server to run.
        on_ready: called once the server and its companions run.
        companions: started after the server (e.g. a
            :class:`~supa_realtime.devserver.wal.WalReader` feeding ``server.emit_change``).
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(server)
            for companion in companions:
                await stack.enter_async_context(companion)
            if on_ready is not None:
                on_ready(server)
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
