"""Decode throughput of the protocol core, against plain ``json.loads`` of the same frames.

Run from the project root::

    python bench/decode.py [--frames 100000]

It builds a realistic mix of server frames (broadcasts, postgres_changes, presence_diff and
replies, in equal parts) encoded as V1 and as V2 text, plus binary kind-4 user broadcasts,
then times ``Serializer.decode`` on each set and ``json.loads`` (the standard library) on the
very same frames. For binary frames the baseline parses just the JSON payload that follows
the kind-4 header, since ``json.loads`` cannot read the frame itself. Each figure is the best of
three runs with the garbage collector paused; ``ratio`` is core / baseline throughput.
Numbers vary with the machine; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supa_realtime.phoenix.message import Message, reply, user_broadcast
from supa_realtime.phoenix.serializer import Serializer, V1Serializer, V2Serializer

TOPIC = "realtime:room1"


def _broadcast(n: int) -> Message:
    return user_broadcast(TOPIC, "cursor", {"x": n % 1920, "y": n % 1080, "user": f"user-{n % 50}"})


def _postgres_change(n: int) -> Message:
    data = {
        "schema": "public",
        "table": "todos",
        "commit_timestamp": "2025-11-19T00:22:40.877Z",
        "type": "UPDATE",
        "columns": [
            {"name": "id", "type": "int8"},
            {"name": "created_at", "type": "timestamptz"},
            {"name": "title", "type": "text"},
            {"name": "done", "type": "bool"},
        ],
        "record": {
            "id": n,
            "created_at": "2025-11-03T09:32:55+00:00",
            "title": f"task number {n}",
            "done": n % 2 == 0,
        },
        "old_record": {"id": n},
        "errors": None,
    }
    return Message(TOPIC, "postgres_changes", {"ids": [104868189, 33112240], "data": data})


def _presence_diff(n: int) -> Message:
    meta = {"phx_ref": f"GHlE8VLvxuKG{n % 10000:04d}", "user_id": n % 500, "status": "away"}
    old = {"phx_ref": "GHlA1fShRjMmZhnL", "user_id": n % 500, "status": "online"}
    key = f"user-{n % 500}"
    payload = {
        "joins": {key: {"metas": [{**meta, "phx_ref_prev": old["phx_ref"]}]}},
        "leaves": {key: {"metas": [old]}},
    }
    return Message(TOPIC, "presence_diff", payload)


def _reply(n: int) -> Message:
    request = Message(TOPIC, "broadcast", {}, ref=str(n), join_ref="3")
    return reply(request, "ok", {})


KINDS: dict[str, Callable[[int], Message]] = {
    "broadcast": _broadcast,
    "postgres_changes": _postgres_change,
    "presence_diff": _presence_diff,
    "phx_reply": _reply,
}


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _time(fn: Callable[[Any], Any], frames: Sequence[Any], repeat: int = 3) -> float:
    """Best of ``repeat`` runs, with the garbage collector off while timing."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for data in frames:
                fn(data)
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best


def _row(label: str, count: int, core: float, baseline: float) -> str:
    core_rate, base_rate = _rate(count, core), _rate(count, baseline)
    return (
        f"{label:<26} {count:>8} {core_rate:>14,.0f} {base_rate:>16,.0f} "
        f"{core_rate / base_rate:>7.2f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="frames per set")
    args = parser.parse_args(argv)
    total: int = args.frames
    names = list(KINDS)
    per_kind = total // len(names)

    print(f"python {sys.version.split()[0]}, {total:,} frames per set")
    heading = ("set / kind", "frames", "core frames/s", "json.loads fr/s", "ratio")
    print("{:<26} {:>8} {:>14} {:>16} {:>7}".format(*heading))
    serializers: list[tuple[str, Serializer, Serializer]] = [
        ("V1", V1Serializer("server"), V1Serializer("client")),
        ("V2", V2Serializer("server"), V2Serializer("client")),
    ]
    for vsn, encoder, decoder in serializers:
        mix: list[str | bytes] = []
        for name in names:
            frames = [encoder.encode(KINDS[name](n)) for n in range(per_kind)]
            core = _time(decoder.decode, frames)
            baseline = _time(json.loads, frames)
            print(_row(f"{vsn} {name}", len(frames), core, baseline))
            mix.extend(frames)
        # the mix interleaved, as a socket would see it
        mixed = [mix[(i % len(names)) * per_kind + i // len(names)] for i in range(len(mix))]
        core = _time(decoder.decode, mixed)
        baseline = _time(json.loads, mixed)
        print(_row(f"{vsn} mix", len(mixed), core, baseline))

    server, client = V2Serializer("server"), V2Serializer("client")
    binary = [
        server.encode(
            user_broadcast(TOPIC, "cursor", _broadcast(n).payload["payload"], binary=True)
        )
        for n in range(total)
    ]
    header = 5 + len(TOPIC) + len("cursor")
    payloads = [frame[header:] for frame in binary]
    core = _time(client.decode, binary)
    baseline = _time(json.loads, payloads)
    print(_row("V2 binary kind 4 (JSON)", len(binary), core, baseline))


if __name__ == "__main__":
    main()
