"""broadcast() cost in a sync view, and broadcasts/s end to end through one worker.

1. **Per call**: a sync view (called directly with a ``RequestFactory`` request) that calls
   ``broadcast()``, outside and inside ``transaction.atomic``, with one Channels consumer (its
   own process) in the topic's group, so the local delivery is real. Each call is timed
   (p50 / p99 / mean, wall clock); "CPU µs" is the calling thread's CPU time per call, the
   part that does not depend on how busy Redis and the machine are.
2. **End to end**: a local Realtime server (its own process), ``manage.py realtime_worker``
   (its own process) and a receiver subscribed to the topic (our client, in this process).
   * ``backlog``: N broadcasts made while no worker runs, then the worker starts; rate =
     N / (last receipt - first receipt).
   * ``live``: the worker runs while ``--producers`` processes (like web server workers) make
     N broadcasts in all as fast as they can; rate = N / (last receipt - first call). Order
     is checked per producer.

    python bench/broadcast.py [--calls 5000] [--messages 20000] [--producers 2]

Prints figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from supa_realtime import broadcast  # noqa: E402
from supa_realtime.client import RealtimeClient  # noqa: E402
from supa_realtime.groups import group_for  # noqa: E402
from supa_realtime.testing.redis import RedisServer  # noqa: E402

TOPIC = "bench"
TARGET_CALL_US = 300
TARGET_RATE = 5000

SERVER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from supa_realtime.devserver import DevServer, Limits
    async def main():
        async with DevServer(limits=Limits(max_events_per_second=10**9)) as server:
            print(server.http_url, server.service_role_key, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    asyncio.run(main())
    """
)


def view(request: HttpRequest) -> HttpResponse:
    broadcast(TOPIC, "seq", {"i": int(request.GET["i"]), "text": "x" * 40})
    return HttpResponse(status=204)


def baseline_view(request: HttpRequest) -> HttpResponse:
    """The same view without the broadcast: what the view costs on its own."""
    {"i": int(request.GET["i"]), "text": "x" * 40}
    return HttpResponse(status=204)


def atomic_view(request: HttpRequest) -> HttpResponse:
    with transaction.atomic():
        broadcast(TOPIC, "seq", {"i": int(request.GET["i"]), "text": "x" * 40})
    return HttpResponse(status=204)


def time_calls(fn: Any, calls: int) -> list[float]:
    factory = RequestFactory()
    requests = [factory.get("/", {"i": str(i)}) for i in range(calls)]
    for request in requests[:200]:
        fn(request)  # warm up connections and scripts
    samples = []
    clock = time.perf_counter_ns
    cpu_start = time.thread_time_ns()
    for request in requests:
        start = clock()
        fn(request)
        samples.append((clock() - start) / 1000)
    cpu_per_call = (time.thread_time_ns() - cpu_start) / 1000 / calls
    return [cpu_per_call, *samples]


def summary(name: str, measured: list[float]) -> str:
    cpu, samples = measured[0], measured[1:]
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[int(len(ordered) * 0.99)]
    return (
        f"{name:<34}{len(samples):>8}{p50:>10.1f}{p99:>10.1f}{statistics.fmean(samples):>10.1f}"
        f"{cpu:>10.1f}   (target p50 <= {TARGET_CALL_US} µs)"
    )


def configure(redis_url: str, prefix: str, url: str = "http://127.0.0.1:9", key: str = "k") -> None:
    settings.SUPA_REALTIME = {
        "URL": url,
        "KEY": key,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "BROADCAST": {"RETENTION_MESSAGES": 1_000_000},
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": prefix, "capacity": 10**7},
        }
    }
    from django.test.signals import setting_changed

    for name in ("SUPA_REALTIME", "CHANNEL_LAYERS"):
        setting_changed.send(sender=None, setting=name, value=getattr(settings, name), enter=True)


CONSUMER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from channels_redis.core import RedisChannelLayer
    async def main():
        layer = RedisChannelLayer(hosts=[sys.argv[1]], prefix=sys.argv[2], capacity=10**7)
        channel = await layer.new_channel("bench.")
        await layer.group_add(sys.argv[3], channel)
        print("ready", flush=True)
        while True:
            await layer.receive(channel)
    asyncio.run(main())
    """
)


def start_consumer(redis_url: str, prefix: str) -> subprocess.Popen[str]:
    """A Channels consumer in the topic's group, in its own process, reading everything."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CONSUMER_SCRIPT, redis_url, prefix, group_for(TOPIC)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc


PRODUCER_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import django
    django.setup()
    from supa_realtime import broadcast
    producer, count, start_at = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    broadcast("bench", "warm", {"p": producer, "i": -1})
    while time.time() < start_at:
        time.sleep(0.001)
    for i in range(count):
        broadcast("bench", "seq", {"p": producer, "i": i, "text": "x" * 40})
    """
)


class Counter:
    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.done = asyncio.Event()
        self.seen: dict[int, list[int]] = {}

    def in_order(self, producers: dict[int, int]) -> bool:
        return self.seen.keys() == producers.keys() and all(
            self.seen[p] == list(range(n)) for p, n in producers.items()
        )

    def __call__(self, message: dict[str, Any]) -> None:
        now = time.perf_counter()
        if self.count == 0:
            self.first = now
        self.count += 1
        payload = message["payload"]
        self.seen.setdefault(payload.get("p", 0), []).append(payload["i"])
        if self.count >= self.total:
            self.last = now
            self.done.set()


def start_worker(http_url: str, key: str, redis_url: str, prefix: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "SUPABASE_URL": http_url,
        "SUPABASE_KEY": key,
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_PREFIX": prefix,
        "SUPA_REALTIME_REDIS_PREFIX": prefix,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "realtime_worker", "-v", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def end_to_end(
    mode: str, messages: int, http_url: str, key: str, redis_url: str, producers: int = 1
) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    configure(redis_url, prefix, http_url, key)
    counter = Counter(messages)
    client = RealtimeClient(http_url, key)
    channel = client.channel(TOPIC).on_broadcast("seq", counter)
    await channel.subscribe()
    worker: subprocess.Popen[bytes] | None = None
    try:
        shares = {p: messages // producers for p in range(producers)}
        shares[0] += messages - sum(shares.values())
        if mode == "backlog":
            shares = {0: messages}
            await asyncio.to_thread(_produce, messages)
            start = None
            worker = start_worker(http_url, key, redis_url, prefix)
        else:
            worker = start_worker(http_url, key, redis_url, prefix)
            warm: set[int] = set()
            channel.on_broadcast("warm", lambda m: warm.add(m["payload"]["p"]))
            start_at = time.time() + 5.0
            procs = [_start_producer(p, n, start_at, http_url, key, redis_url, prefix)
                     for p, n in shares.items()]  # fmt: skip
            # Wait until the worker is active and every producer is ready.
            while len(warm) < producers:  # noqa: ASYNC110 - set by a plain callback
                await asyncio.sleep(0.01)
            await asyncio.sleep(max(0.0, start_at - time.time()))
            start = time.perf_counter()
        await asyncio.wait_for(counter.done.wait(), 300)
        if mode != "backlog":
            for proc in procs:
                await asyncio.to_thread(proc.wait, 60)
    finally:
        if worker is not None:
            worker.terminate()
            await asyncio.to_thread(worker.wait, 30)
        await client.close()
    begin = counter.first if start is None else start
    elapsed = counter.last - begin
    return {
        "mode": f"{mode} ({len(shares)} producer{'s' if len(shares) > 1 else ''})",
        "messages": messages,
        "received": counter.count,
        "in_order": counter.in_order(shares),
        "rate": messages / elapsed if elapsed else 0.0,
    }


def _start_producer(
    producer: int, count: int, start_at: float, http_url: str, key: str, redis_url: str,
    prefix: str,
) -> subprocess.Popen[bytes]:  # fmt: skip
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "SUPABASE_URL": http_url,
        "SUPABASE_KEY": key,
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_PREFIX": prefix,
        "SUPA_REALTIME_REDIS_PREFIX": prefix,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-c", PRODUCER_SCRIPT, str(producer), str(count), repr(start_at)],
        env=env,
    )


def _produce(count: int, event: str = "seq") -> None:
    for i in range(count):
        broadcast(TOPIC, event, {"p": 0, "i": i, "text": "x" * 40})


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--producers", type=int, default=2)
    args = parser.parse_args()

    redis = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-")))
    redis.start()
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, "-c", SERVER_SCRIPT],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        http_url, key = (await asyncio.to_thread(server.stdout.readline)).split()

        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        configure(redis.url, prefix)
        consumer = await asyncio.to_thread(start_consumer, redis.url, prefix)
        print(f"{'broadcast() in a sync view':<34}{'calls':>8}{'p50 µs':>10}{'p99 µs':>10}"
              f"{'mean µs':>10}{'CPU µs':>10}")  # fmt: skip
        baseline = await asyncio.to_thread(time_calls, baseline_view, args.calls)
        print(summary("the view without broadcast()", baseline))
        outside = await asyncio.to_thread(time_calls, view, args.calls)
        print(summary("outside a transaction", outside))
        inside = await asyncio.to_thread(time_calls, atomic_view, args.calls)
        print(summary("inside transaction.atomic", inside))
        consumer.terminate()
        consumer.wait(30)

        print()
        print(f"{'end to end (one worker)':<26}{'messages':>10}{'received':>10}{'in order':>10}"
              f"{'msgs/s':>10}")  # fmt: skip
        for mode in ("backlog", "live"):
            result = await end_to_end(mode, args.messages, http_url, key, redis.url, args.producers)
            print(
                f"{result['mode']:<26}{result['messages']:>10}{result['received']:>10}"
                f"{'yes' if result['in_order'] else 'NO':>10}{result['rate']:>10.0f}"
                f"   (target >= {TARGET_RATE})"
            )
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(30)
        redis.stop()


if __name__ == "__main__":
    asyncio.run(main())
