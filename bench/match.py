"""Throughput of postgres_changes matching: which bindings a change goes to.

Run from the project root::

    python bench/match.py [--changes 20000]

A channel with a realistic set of bindings (no filter, equality, ranges, ``in``, ``like``,
``is``, another table) is matched against INSERT, UPDATE and DELETE changes of a
four-column table. Prints changes per second and microseconds per binding. Numbers vary
with the machine; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supa_realtime.phoenix.filters import Binding, matching_ids, parse_binding

FILTERS = [
    None,
    "id=eq.5",
    "id=gt.100,title=like.task%",
    "done=is.true",
    "id=in.(1,2,3,4,5,6,7,8,9,10)",
    "title=eq.x",
    "created_at=gte.2025-11-01T00:00:00Z",
    "title=imatch.^TASK [0-9]+$",
]
COLUMNS = [
    {"name": "id", "type": "int8"},
    {"name": "created_at", "type": "timestamptz"},
    {"name": "title", "type": "text"},
    {"name": "done", "type": "bool"},
]


def bindings() -> list[Binding]:
    out = []
    for text in FILTERS:
        params: dict[str, Any] = {"event": "*", "schema": "public", "table": "todos"}
        if text is not None:
            params["filter"] = text
        out.append(parse_binding(params))
    out.append(parse_binding({"event": "INSERT", "schema": "public", "table": "other"}))
    return out


def change(n: int) -> dict[str, Any]:
    kind = ("INSERT", "UPDATE", "DELETE")[n % 3]
    row = {
        "id": n,
        "created_at": f"2025-11-{1 + n % 28:02d}T09:32:55+00:00",
        "title": f"task {n}",
        "done": n % 2 == 0,
    }
    data: dict[str, Any] = {
        "schema": "public",
        "table": "todos",
        "commit_timestamp": "2025-11-19T00:22:40.877Z",
        "type": kind,
        "columns": COLUMNS,
        "errors": None,
    }
    if kind != "DELETE":
        data["record"] = row
    if kind != "INSERT":
        data["old_record"] = {"id": n}
    return data


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20_000)
    args = parser.parse_args(argv)
    channel = bindings()
    changes = [change(n) for n in range(args.changes)]
    delivered = sum(len(matching_ids(channel, data)) for data in changes[:300])
    best = float("inf")
    for _ in range(3):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for data in changes:
                matching_ids(channel, data)
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    rate = len(changes) / best
    print(f"python {sys.version.split()[0]}, {len(changes):,} changes, {len(channel)} bindings")
    print(f"{rate:,.0f} changes/s, {1e6 / rate / len(channel):.2f} us per binding")
    print(f"(first 300 changes: {delivered} deliveries)")


if __name__ == "__main__":
    main()
