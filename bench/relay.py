"""Relay throughput: local Realtime server → relay → Redis channel layer group → live receiver.

Runs, in one go and against the same source, Redis and receiver:

* ``ours``: :class:`supa_realtime.worker.Worker` into ``RedisChannelLayer``;
* ``naive-core``: plain websockets + one ``await group_send`` per frame into
  ``RedisChannelLayer`` (what people hand-write);
* ``naive-pubsub``: the same into ``RedisPubSubChannelLayer``.

Two sources, each in its own process so that producing frames does not share the relay's
core:

* ``devserver``: the local Realtime server, fed with REST batch broadcasts from a third
  process. On a 2-core machine its own sending (one socket write per frame) is the ceiling.
* ``blaster``: a minimal Realtime peer that answers the join and then writes N pre-encoded
  broadcast frames, many per socket write. It measures what the relay itself can carry.

A receiver process joins a fresh channel to the group and counts what arrives (unpacking
``realtime.batch``). Frames/s = frames received / (last receipt - first frame sent).
Lost = sent - received.

    python bench/relay.py [--frames 20000] [--runs 1] [--source devserver|blaster|both]

Prints figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402
from channels_redis.core import RedisChannelLayer  # noqa: E402
from channels_redis.pubsub import RedisPubSubChannelLayer  # noqa: E402

from supa_realtime.conf import Subscription  # noqa: E402
from supa_realtime.groups import group_for  # noqa: E402
from supa_realtime.testing.redis import RedisServer  # noqa: E402
from supa_realtime.worker import Worker  # noqa: E402

TOPIC = "realtime:bench"
GROUP = group_for(TOPIC)
BATCH = 1000  # messages per REST request

SERVER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from supa_realtime.devserver import DevServer, Limits
    async def main():
        limits = Limits(max_events_per_second=10**9)
        async with DevServer(limits=limits) as server:
            print(server.http_url, server.service_role_key, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    asyncio.run(main())
    """
)

BLASTER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from urllib.parse import parse_qs, urlsplit
    from websockets.asyncio.server import serve
    from supa_realtime.phoenix.message import Message, reply, user_broadcast
    from supa_realtime.phoenix.serializer import serializer_for
    frames = int(sys.argv[1])
    async def handler(ws):
        query = parse_qs(urlsplit(ws.request.path).query)
        serializer = serializer_for((query.get("vsn") or ["1.0.0"])[0], "server")
        async for raw in ws:
            msg = serializer.decode(raw)
            if msg.event == "phx_join":
                await ws.send(serializer.encode(reply(msg, "ok", {"postgres_changes": []})))
                encoded = [
                    serializer.encode(user_broadcast(msg.topic, "tick", {"i": i, "text": "x" * 40}))
                    for i in range(frames)
                ]
                print(time.time(), flush=True)
                for start in range(0, frames, 500):
                    for data in encoded[start:start + 500]:
                        ws.protocol.send_text(data.encode())
                    ws.send_data()
                    await asyncio.sleep(0)
            elif msg.event in ("heartbeat", "phx_leave"):
                await ws.send(serializer.encode(reply(msg, "ok", {})))
    async def main():
        async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            print(f"http://127.0.0.1:{port} blaster-needs-no-key", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    asyncio.run(main())
    """
)

RECEIVER_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer
    from supa_realtime.layers import unpack
    kind, url, prefix, group, expected, idle = sys.argv[1:7]
    expected, idle = int(expected), float(idle)
    async def main():
        if kind == "pubsub":
            layer = RedisPubSubChannelLayer(hosts=[url], prefix=prefix)
        else:
            layer = RedisChannelLayer(hosts=[url], prefix=prefix)
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        print("ready", flush=True)
        count, first, last = 0, None, None
        while count < expected:
            try:
                message = await asyncio.wait_for(layer.receive(channel), idle)
            except asyncio.TimeoutError:
                break
            now = time.time()
            first = first or now
            last = now
            count += len(unpack(message))
        print(json.dumps({"received": count, "first": first, "last": last}), flush=True)
    asyncio.run(main())
    """
)

FEEDER_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, urllib.request
    url, key, frames, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    start = time.time()
    sent = 0
    while sent < frames:
        n = min(batch, frames - sent)
        body = json.dumps({"messages": [
            {"topic": "bench", "event": "tick", "payload": {"i": sent + i, "text": "x" * 40}}
            for i in range(n)
        ]}).encode()
        req = urllib.request.Request(
            url + "/realtime/v1/api/broadcast", data=body, method="POST",
            headers={"apikey": key, "Content-Type": "application/json"},
        )
        urllib.request.urlopen(req).read()
        sent += n
    print(json.dumps({"start": start, "sent": sent}), flush=True)
    """
)


def _python(script: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        **kwargs,
    )


async def _readline(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
    if not line:
        raise RuntimeError("a bench process exited early")
    return line.strip()


async def naive_relay(
    http_url: str, key: str, layer: Any, stop: asyncio.Event, ready: asyncio.Event
) -> None:
    """Plain websockets, one ``await group_send`` per frame."""
    ws_url = http_url.replace("http", "ws", 1) + "/realtime/v1/websocket?vsn=1.0.0&apikey=" + key
    async with websockets.connect(ws_url, max_size=None) as ws:
        join = {
            "topic": TOPIC,
            "event": "phx_join",
            "ref": "1",
            "join_ref": "1",
            "payload": {"config": {"broadcast": {"self": False}}},
        }
        await ws.send(json.dumps(join))
        await ws.recv()  # the join reply
        ready.set()
        reader = asyncio.ensure_future(_naive_loop(ws, layer))
        await stop.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _naive_loop(ws: Any, layer: Any) -> None:
    async for raw in ws:
        frame = json.loads(raw)
        if frame["event"] == "broadcast":
            body = frame["payload"]
            await layer.group_send(
                GROUP,
                {
                    "type": "realtime.broadcast",
                    "topic": frame["topic"],
                    "event": body["event"],
                    "payload": body["payload"],
                },
            )


async def our_relay(
    http_url: str, key: str, layer: Any, stop: asyncio.Event, ready: asyncio.Event
) -> None:
    worker = Worker(url=http_url, key=key, subscriptions=[Subscription(topic="bench")], layer=layer)
    task = asyncio.ensure_future(worker.run(stop))
    await asyncio.wait_for(worker.ready.wait(), 30)
    ready.set()
    await task


async def run_one(
    name: str,
    source: str,
    frames: int,
    redis_url: str,
    server: subprocess.Popen[str],
    http_url: str,
    key: str,
) -> dict[str, Any]:
    prefix = f"bench{time.monotonic_ns()}"
    kind = "pubsub" if name == "naive-pubsub" else "core"
    if kind == "pubsub":
        layer: Any = RedisPubSubChannelLayer(hosts=[redis_url], prefix=prefix)
    else:
        layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    receiver = _python(RECEIVER_SCRIPT, kind, redis_url, prefix, GROUP, str(frames), "5")
    assert await _readline(receiver) == "ready"
    stop, ready = asyncio.Event(), asyncio.Event()
    relay = our_relay if name == "ours" else naive_relay
    relay_task = asyncio.ensure_future(relay(http_url, key, layer, stop, ready))
    await asyncio.wait_for(ready.wait(), 30)
    cpu0 = time.process_time()
    if source == "blaster":
        start = float(await _readline(server))  # the blast began when the relay joined
    else:
        feeder = _python(FEEDER_SCRIPT, http_url, key, str(frames), str(BATCH))
        start = json.loads(await _readline(feeder))["start"]
        feeder.wait()
    result = json.loads(await asyncio.wait_for(_readline(receiver), 600))
    cpu = time.process_time() - cpu0
    stop.set()
    await relay_task
    receiver.wait()
    with contextlib.suppress(Exception):
        await layer.flush()
    received = result["received"]
    elapsed = (result["last"] or start) - start
    return {
        "name": name,
        "source": source,
        "frames": frames,
        "received": received,
        "lost": frames - received,
        "seconds": elapsed,
        "frames_per_s": received / elapsed if elapsed > 0 else 0.0,
        "relay_cpu_us_per_frame": cpu / max(received, 1) * 1e6,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--source", choices=("devserver", "blaster", "both"), default="both")
    args = parser.parse_args()
    sources = ("devserver", "blaster") if args.source == "both" else (args.source,)

    import tempfile

    redis = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-")))
    redis.start()
    results = []
    try:
        for source in sources:
            script = BLASTER_SCRIPT if source == "blaster" else SERVER_SCRIPT
            extra = (str(args.frames),) if source == "blaster" else ()
            server = _python(script, *extra, stdin=subprocess.PIPE)
            try:
                http_url, key = (await _readline(server)).split()
                for _ in range(args.runs):
                    for name in ("ours", "naive-core", "naive-pubsub"):
                        results.append(
                            await run_one(
                                name, source, args.frames, redis.url, server, http_url, key
                            )
                        )
            finally:
                assert server.stdin is not None
                server.stdin.close()
                server.wait(30)
    finally:
        redis.stop()
    print(
        f"{'source':<11}{'relay':<14}{'frames':>8}{'received':>10}{'lost':>8}{'frames/s':>11}"
        f"{'relay CPU µs/frame':>20}"
    )
    for r in results:
        print(
            f"{r['source']:<11}{r['name']:<14}{r['frames']:>8}{r['received']:>10}{r['lost']:>8}"
            f"{r['frames_per_s']:>11.0f}{r['relay_cpu_us_per_frame']:>20.1f}"
        )
    for source in sources:
        best = {r["name"]: r["frames_per_s"] for r in results if r["source"] == source}
        for base in ("naive-core", "naive-pubsub"):
            if best.get(base):
                print(f"{source}: ours / {base}: {best['ours'] / best[base]:.1f}x")
    print("target for ours: >= 20,000 frames/s with nothing lost")


if __name__ == "__main__":
    asyncio.run(main())
