"""Gateway fan-out: CPU of one ASGI server process per frame delivered to a browser socket.

Starts a ``redis-server`` and one daphne process serving ``RealtimeConsumer`` (the gateway
test settings), opens ``--sockets`` raw V2 websockets (half V1 with ``--mixed``) joined to
one topic, then sends ``--messages`` broadcasts into the topic's group as the worker does
(``realtime.batch`` messages of ``--batch``). Each socket counts what it receives (in this
process, so its reading does not count against daphne).

CPU per delivery = daphne's user+system CPU during the run / (sockets x messages).

    python bench/gateway_fanout.py [--sockets 200] [--messages 2000] [--batch 50] [--mixed]
                                   [--server daphne|uvicorn]

Prints figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets
from channels_redis.core import RedisChannelLayer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from supa_realtime.groups import group_for  # noqa: E402
from supa_realtime.testing.redis import RedisServer, free_port  # noqa: E402

TOPIC = "realtime:room:bench"


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(
    directory: Path, redis_url: str, prefix: str, server: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.gateway.gateway_settings",
        GATEWAY_DB=str(directory / "db.sqlite3"),
        REDIS_URL=redis_url,
        CHANNEL_LAYER_PREFIX=prefix,
        GATEWAY_SUPA_REALTIME=json.dumps(
            {
                "URL": "http://127.0.0.1:9",
                "KEY": "bench-placeholder",
                "REDIS_URL": redis_url,
                "GATEWAY": {"TOPICS": {"*": {"join": "any"}}},
            }
        ),
        PYTHONPATH=str(ROOT),
    )
    log = (directory / "daphne.log").open("wb")
    app = "tests.gateway.gateway_asgi:application"
    if server == "uvicorn":
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ws",
            "websockets",
            "--lifespan",
            "off",
            "--log-level",
            "warning",
            app,
        ]
    else:
        command = [
            sys.executable,
            "-c",
            "from daphne.cli import CommandLineInterface as C; C.entrypoint()",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "-v",
            "0",
            app,
        ]
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.05)
    raise RuntimeError(f"{server} did not start")


async def run(args: argparse.Namespace, port: int, pid: int, layer: Any) -> None:
    counts = [0] * args.sockets
    done = asyncio.Event()
    total = args.sockets * args.messages

    async def reader(index: int, ws: Any) -> None:
        async for _ in ws:
            counts[index] += 1
            if counts[index] == args.messages and all(c >= args.messages for c in counts):
                done.set()

    sockets = []
    for n in range(args.sockets):
        vsn = "1.0.0" if args.mixed and n % 2 else "2.0.0"
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/realtime/v1/websocket?vsn={vsn}", ping_interval=None
        )
        if vsn == "2.0.0":
            await ws.send(json.dumps(["1", "1", TOPIC, "phx_join", {"config": {}}]))
        else:
            await ws.send(
                json.dumps(
                    {"topic": TOPIC, "event": "phx_join", "payload": {"config": {}}, "ref": "1"}
                )
            )
        await ws.recv()
        sockets.append(ws)
    tasks = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets)]
    group = group_for(TOPIC)
    payload = {"text": "x" * 100, "n": 0}
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    for start in range(0, args.messages, args.batch):
        batch = [
            {"type": "realtime.broadcast", "topic": TOPIC, "event": "msg", "payload": payload}
            for _ in range(min(args.batch, args.messages - start))
        ]
        await layer.group_send(group, {"type": "realtime.batch", "messages": batch})
    await asyncio.wait_for(done.wait(), 300)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for ws in sockets:
        await ws.close()
    print(
        f"{args.server} sockets={args.sockets} messages={args.messages} batch={args.batch} "
        f"mixed={args.mixed}: "
        f"{total} deliveries in {elapsed:.2f} s ({total / elapsed:,.0f}/s); "
        f"server CPU {cpu:.2f} s = {cpu / total * 1e6:.1f} µs per delivery"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--mixed", action="store_true")
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        directory = Path(tmp)
        redis = RedisServer(directory)
        redis.start()
        prefix = "bench"
        process, port = start_server(directory, redis.url, prefix, args.server)
        try:
            layer = RedisChannelLayer(
                hosts=[redis.url], prefix=prefix, channel_capacity={"gateway.*": 10_000}
            )
            asyncio.run(run(args, port, process.pid, layer))
        finally:
            process.terminate()
            process.wait(10)
            redis.stop()


if __name__ == "__main__":
    main()
