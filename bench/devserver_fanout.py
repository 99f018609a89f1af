"""Fan-out of the local Realtime server: one sender, many subscribers on one topic.

A :class:`~supa_realtime.devserver.DevServer` runs in this process. ``--subscribers`` raw
websockets (half vsn 1.0.0, half 2.0.0) join ``realtime:bench``; one more socket sends
``--messages`` V2 text broadcasts as fast as it can. Deliveries/s = messages x subscribers /
(time from the first send until every subscriber has every message). The receivers run in the
same process and event loop as the server, so the figure is a floor for the server alone.

    python bench/devserver_fanout.py [--subscribers 200] [--messages 200]

Prints figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supa_realtime.devserver import DevServer
from supa_realtime.testing.devserver import RawClient

TOPIC = "realtime:bench"


async def receive(client: RawClient, count: int) -> None:
    got = 0
    while got < count:
        frame = await client.ws.recv()
        if "broadcast" in (frame if isinstance(frame, str) else ""):
            got += 1


async def main(subscribers: int, messages: int) -> None:
    async with DevServer() as server:
        receivers = [
            await RawClient.connect(server, vsn="1.0.0" if n % 2 else "2.0.0")
            for n in range(subscribers)
        ]
        for client in receivers:
            await client.join(TOPIC)
        sender = await RawClient.connect(server)
        await sender.join(TOPIC)
        frame = (
            '[null,null,"realtime:bench","broadcast",{"type":"broadcast","event":"e",'
            '"payload":{"n":1,"text":"hello"}}]'
        )
        tasks = [asyncio.create_task(receive(c, messages)) for c in receivers]
        started = time.perf_counter()
        for _ in range(messages):
            await sender.ws.send(frame)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        for client in [*receivers, sender]:
            await client.close()
    deliveries = messages * subscribers
    print(f"subscribers={subscribers} messages={messages} deliveries={deliveries}")
    print(f"elapsed={elapsed:.3f}s deliveries/s={deliveries / elapsed:,.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.subscribers, args.messages))
