"""Database changes from commit to receipt: WAL reader alone, and through the local server.

A throwaway PostgreSQL cluster (initdb in a temporary folder, ``wal_level=logical``) gets
``--rows`` inserts, ``--batch`` rows per transaction, from a writer thread using psycopg. The
commit time of each row is taken right after ``COMMIT`` returns to the writer; its receipt
time is taken:

* ``reader``: when :class:`~supa_realtime.devserver.wal.WalReader` calls ``on_change``;
* ``client``: when our :class:`~supa_realtime.client.RealtimeClient`, subscribed to the table
  through a local :class:`~supa_realtime.devserver.server.DevServer` fed by the reader, gets
  the ``postgres_changes`` frame.

Rows/s = rows received / (last receipt - first commit). Latency = receipt - commit, per row.
The writer runs flat out (``--pace 0``) or waits ``--pace`` seconds between transactions.

    python bench/cdc.py [--rows 10000] [--batch 100] [--poll-interval 0.1] [--pace 0]

Anchor: Supabase processes postgres_changes on a single thread; its published estimator
shows about 64 changes/s delivered to 500 clients, whatever the compute size. Prints figures
only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from supa_realtime.client import RealtimeClient  # noqa: E402
from supa_realtime.devserver.limits import Limits  # noqa: E402
from supa_realtime.devserver.local_postgres import running_postgres  # noqa: E402
from supa_realtime.devserver.server import DevServer  # noqa: E402
from supa_realtime.devserver.wal import WalReader  # noqa: E402
from supa_realtime.events import PostgresChange  # noqa: E402

ANCHOR = "Supabase estimator: ~64 changes/s delivered to 500 clients (single-threaded)"


def write_rows(dsn: str, table: str, rows: int, batch: int, pace: float) -> dict[int, float]:
    """Insert ``rows`` rows; return each id's commit time (perf_counter after COMMIT)."""
    committed: dict[int, float] = {}
    with psycopg.connect(dsn) as conn:
        next_id = 1
        while next_id <= rows:
            ids = list(range(next_id, min(rows, next_id + batch - 1) + 1))
            with conn.cursor() as cur:
                cur.execute(
                    f"INSERT INTO {table} (id, title, payload) "
                    "SELECT i, 'row ' || i, jsonb_build_object('n', i, 'tags', ARRAY['a', 'b']) "
                    "FROM unnest(%s::int[]) AS i",
                    (ids,),
                )
            conn.commit()
            now = time.perf_counter()
            for i in ids:
                committed[i] = now
            next_id = ids[-1] + 1
            if pace:
                time.sleep(pace)
    return committed


def report(label: str, committed: dict[int, float], received: dict[int, float]) -> None:
    latencies = sorted(received[i] - committed[i] for i in received if i in committed)
    if not latencies:
        print(f"{label:8} nothing received")
        return
    span = max(received.values()) - min(committed.values())
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    print(
        f"{label:8} {len(received):>7} rows  {len(received) / span:>9.0f} rows/s  "
        f"p50 {cuts[49] * 1000:7.1f} ms  p99 {cuts[98] * 1000:7.1f} ms  "
        f"max {latencies[-1] * 1000:7.1f} ms  lost {len(committed) - len(received)}"
    )


class Receipts(dict[int, float]):
    """Receipt time per row id; :meth:`wait` returns once ``expected`` rows are in."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.done = asyncio.Event()

    def add(self, row_id: int) -> None:
        self[row_id] = time.perf_counter()
        if len(self) >= self.expected:
            self.done.set()

    async def wait(self, within: float) -> None:
        try:
            await asyncio.wait_for(self.done.wait(), within)
        except TimeoutError:
            print(f"  gave up after {within:g} s with {len(self)} of {self.expected} rows")


async def run_reader(dsn: str, args: argparse.Namespace) -> None:
    received = Receipts(args.rows)

    async def on_change(data: dict[str, Any]) -> None:
        received.add(data["record"]["id"])

    async with WalReader(dsn, on_change=on_change, poll_interval=args.poll_interval):
        committed = await asyncio.to_thread(
            write_rows, dsn, "rows_reader", args.rows, args.batch, args.pace
        )
        await received.wait(args.wait)
    report("reader", committed, received)


async def run_client(dsn: str, args: argparse.Namespace) -> None:
    received = Receipts(args.rows)

    def on_change(change: PostgresChange) -> None:
        assert change.record is not None
        received.add(change.record["id"])

    limits = Limits(max_events_per_second=10**9)
    async with DevServer(limits=limits) as server:
        reader = WalReader(dsn, on_change=server.emit_change, poll_interval=args.poll_interval)
        async with reader, RealtimeClient(server.ws_url, server.anon_key) as client:
            channel = client.channel("bench")
            channel.on_postgres_changes("INSERT", on_change, table="rows_client")
            await channel.subscribe()
            committed = await asyncio.to_thread(
                write_rows, dsn, "rows_client", args.rows, args.batch, args.pace
            )
            await received.wait(args.wait)
    report("client", committed, received)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100, help="rows per transaction")
    parser.add_argument("--poll-interval", type=float, default=0.1, help="seconds (Supabase: 0.1)")
    parser.add_argument("--pace", type=float, default=0.0, help="seconds between transactions")
    parser.add_argument("--wait", type=float, default=120.0, help="max seconds to wait")
    parser.add_argument("--only", choices=["reader", "client"], default=None)
    args = parser.parse_args()

    with running_postgres() as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            for table in ("rows_reader", "rows_client"):
                conn.execute(
                    f"CREATE TABLE {table} (id int PRIMARY KEY, title text, payload jsonb, "
                    "created_at timestamptz NOT NULL DEFAULT now())"
                )
        print(
            f"{args.rows} rows, {args.batch} per transaction, poll interval "
            f"{args.poll_interval * 1000:g} ms, pace {args.pace * 1000:g} ms"
        )
        if args.only in (None, "reader"):
            await run_reader(server.dsn, args)
        if args.only in (None, "client"):
            await run_client(server.dsn, args)
    print(ANCHOR)


if __name__ == "__main__":
    asyncio.run(main())
