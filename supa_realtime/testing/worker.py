"""Run a :class:`~supa_realtime.worker.Worker` inside a test.

Example::

    async with running_worker(Worker(url=..., key=..., subscriptions=[...], layer=layer)):
        ...  # the worker has joined every subscription

The worker runs as a task of the test's event loop. On leaving the block it is told to stop
and awaited (it leaves its channels and delivers what it already received), within
``stop_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from supa_realtime.worker import Worker

__all__ = ["running_worker"]


@contextlib.asynccontextmanager
async def running_worker(
    worker: Worker,
    *,
    wait_ready: bool = True,
    ready_timeout: float = 15.0,
    stop_timeout: float = 30.0,
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``worker`` for the duration of the block; yield its task.

    Args:
        worker: the worker to run.
        wait_ready: wait until it is active and has joined its subscriptions (a standby
            worker, waiting for the lease, is never ready: pass ``False`` for it).
        ready_timeout: seconds to wait for that.
        stop_timeout: seconds its shutdown may take (leaving channels, closing and draining
            are each bounded at 5 s).
    """
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name="supa_realtime.testing worker")
    try:
        if wait_ready:
            ready = asyncio.ensure_future(worker.ready.wait())
            done, _ = await asyncio.wait(
                {ready, task}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if task in done:
                ready.cancel()
                task.result()  # the worker ended before it was ready: raise why
                raise RuntimeError("the worker stopped before it was ready")
            if not done:
                ready.cancel()
                raise TimeoutError(f"the worker was not ready within {ready_timeout:g} s")
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=stop_timeout)
