"""Receive throughput of the asyncio client, next to the official Python client.

A local Realtime server runs in its own process; a sender process pushes ``--frames``
JSON broadcasts (vsn 1.0.0 text frames, ``self: false``) on one topic as fast as it can;
in this process one receiver at a time counts them in a broadcast callback:

* ``ours-v2``: :class:`supa_realtime.client.RealtimeClient`, vsn 2.0.0 (binary kind 4);
* ``ours-v1``: the same with vsn 1.0.0 (JSON text);
* ``official``: ``realtime.AsyncRealtimeClient`` (vsn 1.0.0).

Frames/s = frames received / (last receipt - first receipt). Lost = sent - received
within the wait. With three processes on a small machine the sender and the server share
the cores, so these figures bound the whole path, not the client alone; the second table
times the client's own receive path (decode once, route by topic, run the callback) on
frames already in memory.

    python bench/client_receive.py [--frames 20000]

Prints figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from supa_realtime.client import RealtimeClient  # noqa: E402

SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from supa_realtime.devserver import DevServer, Limits
    async def main():
        limits = Limits(max_events_per_second=10**9)
        async with DevServer(limits=limits) as server:
            print(server.port, server.anon_key, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    asyncio.run(main())
    """
)

SENDER = textwrap.dedent(
    """
    import asyncio, sys, websockets
    from supa_realtime.phoenix.message import Message, user_broadcast
    from supa_realtime.phoenix.serializer import V1Serializer
    port, key, frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
    async def main():
        ser = V1Serializer("client")
        url = f"ws://127.0.0.1:{port}/realtime/v1/websocket?apikey={key}&vsn=1.0.0"
        async with websockets.connect(url, ping_interval=None) as ws:
            join = Message("realtime:bench", "phx_join", {"config": {}}, ref="1", join_ref="1")
            await ws.send(ser.encode(join))
            await ws.recv()
            for n in range(frames):
                msg = user_broadcast("realtime:bench", "tick", {"n": n}, ref=None, join_ref="1")
                await ws.send(ser.encode(msg))
            await asyncio.sleep(1)
    asyncio.run(main())
    """
)


async def receive(kind: str, port: int, key: str, frames: int) -> tuple[int, float]:
    times: list[float] = []

    def tick(_: Any) -> None:
        times.append(time.perf_counter())

    url = f"ws://127.0.0.1:{port}/realtime/v1"
    closer: Any
    if kind == "official":
        from realtime import AsyncRealtimeClient

        official = AsyncRealtimeClient(url, key)
        channel = official.channel("bench")
        channel.on_broadcast("tick", tick)
        await channel.subscribe()
        closer = official.close
    else:
        ours = RealtimeClient(url, key, vsn="2.0.0" if kind == "ours-v2" else "1.0.0")
        await ours.channel("bench").on_broadcast("tick", tick).subscribe()
        closer = ours.close
    sender = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SENDER, str(port), key, str(frames), cwd=ROOT
    )
    deadline = time.monotonic() + 60
    while len(times) < frames and time.monotonic() < deadline:
        if sender.returncode is not None and times and time.perf_counter() - times[-1] > 2:
            break
        await asyncio.sleep(0.05)
    await sender.wait()
    await closer()
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    return len(times), span


def receive_path(frames: int) -> None:
    """Decode + dispatch of in-memory frames through a subscribed-state channel."""
    from supa_realtime.phoenix.channel import ChannelEvent
    from supa_realtime.phoenix.message import user_broadcast
    from supa_realtime.phoenix.serializer import serializer_for

    print(f"{'vsn':<10} {'frames':>9} {'frames/s':>10}   (receive path only)")
    for vsn in ("2.0.0", "1.0.0"):
        client = RealtimeClient("ws://127.0.0.1:1/realtime/v1", "key", vsn=vsn)
        count = 0

        def tick(_: Any) -> None:
            nonlocal count
            count += 1

        channel = client.channel("bench").on_broadcast("tick", tick)
        channel._machine.handle(ChannelEvent.JOIN, join_ref="1")
        channel._machine.handle(ChannelEvent.JOIN_OK)
        server = serializer_for(vsn, "server")
        data = [
            server.encode(user_broadcast("realtime:bench", "tick", {"n": n}, binary=True))
            for n in range(frames)
        ]
        decode, channels = client._serializer.decode, client._channels
        start = time.perf_counter()
        for frame in data:
            msg = decode(frame)
            channels[msg.topic]._on_message(msg)
        elapsed = time.perf_counter() - start
        assert count == frames
        print(f"{vsn:<10} {frames:>9} {frames / elapsed:>10.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=20000)
    args = parser.parse_args()
    receive_path(max(args.frames, 100_000))
    print()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port_text, key = server.stdout.readline().split()
        port = int(port_text)
        print(f"{'receiver':<10} {'received':>9} {'lost':>6} {'frames/s':>10}")
        for kind in ("ours-v2", "ours-v1", "official"):
            got, span = asyncio.run(receive(kind, port, key, args.frames))
            rate = (got - 1) / span if got > 1 else 0.0
            print(f"{kind:<10} {got:>9} {args.frames - got:>6} {rate:>10.0f}")
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
