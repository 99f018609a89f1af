"""Fan-out from one ASGI process to N websockets: our gateway against plain Channels.

For each N (``--sizes``, default 100 and 1000) two daphne processes are measured in turn,
each serving all N sockets on its own:

- **gateway**: ``RealtimeConsumer`` (``bench/gateway_fanout.py``'s server); the N sockets
  join one topic and the events arrive as the worker sends them, ``realtime.batch`` group
  messages of ``--batch`` broadcasts;
- **plain**: an ``AsyncJsonWebsocketConsumer`` per socket in one group
  (``bench/plain_fanout_asgi.py``), one ``group_send`` per event and ``send_json`` per socket,
  the layer with its default capacity.

Figures, per server and N:

- *deliveries/s*: a burst of ``--messages`` events (``--messages-1000`` for N = 1000) sent as
  fast as the layer takes them, N x messages / time until every socket has them all (or
  until nothing arrived for ``--quiet`` s);
- *CPU µs/delivery*: the server process's user+system CPU (``/proc/<pid>/stat``) during the
  burst / deliveries;
- *all-N ms*: one event at a time (``--probes`` of them, when the server is idle), time from
  the send until the last of the N sockets has it; median and worst;
- *lost*: events sent but never received, summed over sockets; for the gateway, lost events
  are also counted by the hub and signalled to the socket as a ``system`` message, which the
  clients count as *signalled*.

The websocket clients run in ``--client-processes`` processes (2 by default), on loopback.

    python bench/fanout.py [--sizes 100 1000] [--messages 1000] [--messages-1000 100]
                           [--batch 50] [--probes 20] [--client-processes 2]

Prints figures and the targets next to them; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import websockets
from channels_redis.core import RedisChannelLayer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gateway_fanout import TOPIC, cpu_seconds, start_server  # noqa: E402

from supa_realtime.groups import group_for  # noqa: E402
from supa_realtime.testing.redis import RedisServer, free_port  # noqa: E402

PREFIX = "bench"
PLAIN_GROUP = "bench"
TARGETS = {"speedup": 4.0, "cpu_us": 60.0, "all_100_ms": 8.0}
# Per client process; plain Channels runs out of Redis connections with many more at once.
CONNECT_CONCURRENCY = 20


def start_plain(directory: Path, redis_url: str) -> tuple[subprocess.Popen[bytes], int]:
    """daphne serving ``bench/plain_fanout_asgi.py`` with the gateway test settings."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.gateway.gateway_settings",
        GATEWAY_DB=str(directory / "db.sqlite3"),
        REDIS_URL=redis_url,
        CHANNEL_LAYER_PREFIX=PREFIX,
        GATEWAY_SUPA_REALTIME=json.dumps({"URL": "http://127.0.0.1:9", "KEY": "bench"}),
        PYTHONPATH=str(ROOT),
    )
    log = (directory / "plain.log").open("wb")
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0"]
    process = subprocess.Popen(
        [*command, "bench.plain_fanout_asgi:application"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        import socket

        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.05)
    raise RuntimeError("plain daphne did not start")


@dataclass
class Clients:
    """N sockets, each counting frames; ``last`` is when the latest frame arrived."""

    sockets: list[Any]
    counts: list[int]
    system: list[int]
    last: float = 0.0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def total(self) -> int:
        return sum(self.counts)

    async def wait_total(self, expected: int, quiet: float) -> None:
        """Until ``expected`` frames arrived in all, or none arrived for ``quiet`` s."""
        while self.total() < expected:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), quiet)
            except TimeoutError:
                return

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


async def open_clients(url: str, n: int, join: bool) -> Clients:
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Any:
        async with limit:
            ws = await websockets.connect(url, ping_interval=None, max_queue=None)
            if join:
                await ws.send(json.dumps(["1", "1", TOPIC, "phx_join", {"config": {}}]))
                await ws.recv()
            return ws

    sockets = await asyncio.gather(*(one() for _ in range(n)))
    clients = Clients(list(sockets), [0] * n, [0] * n)

    async def reader(index: int, ws: Any) -> None:
        async for frame in ws:
            if isinstance(frame, str) and '"system"' in frame:
                clients.system[index] += 1
                continue
            clients.counts[index] += 1
            clients.last = time.perf_counter()
            clients.changed.set()

    clients.tasks = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(clients.sockets)]
    return clients


def _client_process(conn: Connection, url: str, n: int, join: bool) -> None:
    """One client process: ``n`` sockets; answers ``("wait", expected, quiet)`` with
    ``(frames, last arrival, system messages)`` and ``("close",)`` by closing."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        clients = await open_clients(url, n, join)
        conn.send("ready")
        try:
            while True:
                command = await loop.run_in_executor(None, conn.recv)
                if command[0] == "close":
                    break
                await clients.wait_total(command[1], command[2])
                conn.send((clients.total(), clients.last, sum(clients.system)))
        finally:
            await clients.close()
            conn.send("closed")

    asyncio.run(serve())


class ClientPool:
    """N sockets spread over a few processes, so that reading them is not one core's work.
    Arrival times are ``time.perf_counter()`` (CLOCK_MONOTONIC: one clock for every
    process)."""

    def __init__(self, url: str, n: int, join: bool, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        sizes = [n // processes + (1 if i < n % processes else 0) for i in range(processes)]
        self.sizes = [size for size in sizes if size]
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        for size in self.sizes:
            mine, theirs = context.Pipe()
            proc = context.Process(target=_client_process, args=(theirs, url, size, join))
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)
        self.counts = [0] * len(self.sizes)
        self.last = 0.0
        self.system = 0

    async def _ask(self, pipe: Connection, command: tuple[Any, ...]) -> Any:
        loop = asyncio.get_running_loop()
        pipe.send(command)
        return await loop.run_in_executor(None, pipe.recv)

    async def ready(self) -> None:
        loop = asyncio.get_running_loop()
        for pipe in self.pipes:
            answer = await asyncio.wait_for(loop.run_in_executor(None, pipe.recv), 120)
            if answer != "ready":
                raise RuntimeError(f"client process said {answer!r}")

    def total(self) -> int:
        return sum(self.counts)

    async def wait_each(self, frames_per_socket: int, quiet: float) -> None:
        """Until every socket has ``frames_per_socket`` more frames (or all went quiet)."""
        targets = [
            count + size * frames_per_socket
            for count, size in zip(self.counts, self.sizes, strict=True)
        ]
        answers = await asyncio.gather(
            *(
                self._ask(pipe, ("wait", target, quiet))
                for pipe, target in zip(self.pipes, targets, strict=True)
            )
        )
        self.counts = [answer[0] for answer in answers]
        self.last = max(answer[1] for answer in answers)
        self.system = sum(answer[2] for answer in answers)

    async def close(self) -> None:
        await asyncio.gather(*(self._ask(pipe, ("close",)) for pipe in self.pipes))
        for proc in self.procs:
            await asyncio.get_running_loop().run_in_executor(None, proc.join, 30)


class Sender:
    """Sends events the way each server expects them."""

    def __init__(self, layer: RedisChannelLayer, gateway: bool, batch: int) -> None:
        self.layer = layer
        self.gateway = gateway
        self.batch = batch
        self.payload = {"text": "x" * 100}

    async def burst(self, count: int) -> None:
        if self.gateway:
            group = group_for(TOPIC)
            for start in range(0, count, self.batch):
                batch = [
                    {
                        "type": "realtime.broadcast",
                        "topic": TOPIC,
                        "event": "msg",
                        "payload": self.payload,
                    }
                    for _ in range(min(self.batch, count - start))
                ]
                await self.layer.group_send(group, {"type": "realtime.batch", "messages": batch})
        else:
            for _ in range(count):
                await self.layer.group_send(
                    PLAIN_GROUP, {"type": "bench.event", "payload": self.payload}
                )


@dataclass
class Result:
    name: str
    n: int
    messages: int
    deliveries_per_s: float
    cpu_us: float
    all_ms_median: float
    all_ms_worst: float
    lost: int
    signalled: int


async def measure(
    name: str, url: str, pid: int, n: int, messages: int, args: argparse.Namespace
) -> Result:
    gateway = name == "gateway"
    # group_send checks capacity on the sending side: the gateway's hub channel gets the
    # capacity its settings give it, the plain consumers' channels the default.
    capacity = {"gateway.*": 10_000} if gateway else {}
    layer = RedisChannelLayer(hosts=[args.redis_url], prefix=PREFIX, channel_capacity=capacity)
    sender = Sender(layer, gateway, args.batch)
    clients = ClientPool(url, n, gateway, args.client_processes)
    try:
        await clients.ready()
        # warm-up: one event reaches everyone (group memberships are in place)
        await sender.burst(1)
        await clients.wait_each(1, args.quiet)
        base = clients.total()

        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        await sender.burst(messages)
        await clients.wait_each(messages, args.quiet)
        elapsed = (clients.last if clients.last > t0 else time.perf_counter()) - t0
        cpu = cpu_seconds(pid) - cpu0
        delivered = clients.total() - base
        lost = n * messages - delivered

        latencies = []
        for _ in range(args.probes):
            before = clients.total()
            start = time.perf_counter()
            await sender.burst(1)
            await clients.wait_each(1, args.quiet)
            if clients.total() - before < n:
                lost += n - (clients.total() - before)
                continue
            latencies.append((clients.last - start) * 1000)
        return Result(
            name=name,
            n=n,
            messages=messages,
            deliveries_per_s=delivered / elapsed if elapsed > 0 else 0.0,
            cpu_us=cpu / max(delivered, 1) * 1e6,
            all_ms_median=statistics.median(latencies) if latencies else float("nan"),
            all_ms_worst=max(latencies) if latencies else float("nan"),
            lost=lost,
            signalled=clients.system,
        )
    finally:
        await clients.close()
        await layer.flush()
        await layer.close_pools()


def show(result: Result) -> None:
    print(
        f"  {result.name:<8} N={result.n:<5} {result.messages} events: "
        f"{result.deliveries_per_s:>10,.0f} deliveries/s  "
        f"{result.cpu_us:>7.1f} µs CPU/delivery  "
        f"all-N {result.all_ms_median:6.2f} ms median ({result.all_ms_worst:.2f} worst)  "
        f"lost {result.lost} (signalled {result.signalled})",
        flush=True,
    )


def verdict(ours: Result, plain: Result) -> None:
    speedup = ours.deliveries_per_s / plain.deliveries_per_s if plain.deliveries_per_s else 0
    lines = [
        f"speed-up {speedup:.1f}x (target >= {TARGETS['speedup']:.0f}x)",
        f"CPU {ours.cpu_us:.1f} µs/delivery (target <= {TARGETS['cpu_us']:.0f})",
    ]
    if ours.n == 100:
        lines.append(
            f"all 100 in {ours.all_ms_median:.2f} ms median (target <= {TARGETS['all_100_ms']:.0f})"
        )
    lines.append(f"lost {ours.lost}, signalled {ours.signalled} (target: no uncounted loss)")
    print("  ours vs targets: " + "; ".join(lines), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--messages-1000", type=int, default=100, dest="messages_1000")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--quiet", type=float, default=3.0)
    parser.add_argument("--client-processes", type=int, default=2, dest="client_processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        directory = Path(tmp)
        redis = RedisServer(directory)
        redis.start()
        args.redis_url = redis.url
        servers: list[subprocess.Popen[bytes]] = []
        try:
            gateway, gateway_port = start_server(directory, redis.url, PREFIX, "daphne")
            servers.append(gateway)
            plain, plain_port = start_plain(directory, redis.url)
            servers.append(plain)
            for n in args.sizes:
                messages = args.messages if n <= 100 else args.messages_1000
                print(f"N = {n}", flush=True)
                ours = asyncio.run(
                    measure(
                        "gateway",
                        f"ws://127.0.0.1:{gateway_port}/realtime/v1/websocket?vsn=2.0.0",
                        gateway.pid,
                        n,
                        messages,
                        args,
                    )
                )
                show(ours)
                base = asyncio.run(
                    measure(
                        "plain", f"ws://127.0.0.1:{plain_port}/plain/", plain.pid, n, messages, args
                    )
                )
                show(base)
                verdict(ours, base)
        except BaseException:
            for log in sorted(directory.glob("*.log")):
                print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-2000:]}")
            raise
        finally:
            for process in servers:
                process.terminate()
                process.wait(10)
            redis.stop()


if __name__ == "__main__":
    main()
