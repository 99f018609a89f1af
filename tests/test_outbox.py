"""The outbox: durable while the worker is down, in order, resent after a server restart,
one active worker among several, and counted (never silent) drops past the retention."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from supa_realtime import broadcast
from supa_realtime.conf import Subscription
from supa_realtime.devserver import DevServer
from supa_realtime.groups import group_for
from supa_realtime.outbox import GROUP, OutboxKeys, read_status
from supa_realtime.testing import GroupCapture
from supa_realtime.testing.devserver import eventually
from tests.broadcast_support import (
    Gate,
    Receiver,
    make_worker,
    running,
)

pytestmark = pytest.mark.django_db(transaction=True)


def produce(count: int, event: str = "seq", start: int = 0) -> None:
    for i in range(start, start + count):
        broadcast("room1", event, {"i": i})


def indexes(receiver: Receiver, event: str = "seq") -> list[int]:
    return [m["payload"]["i"] for m in receiver.events(event)]


async def test_backlog_made_while_the_worker_is_down_arrives_in_order_once(
    realtime_server: DevServer,
    channel_layer: Any,
    broadcast_settings: Callable[..., Any],
    aredis: Any,
    redis_prefix: str,
) -> None:
    broadcast_settings(realtime_server)
    await asyncio.to_thread(produce, 1000)
    assert await aredis.xlen(f"{redis_prefix}:outbox") == 1000
    receiver = await Receiver.start(realtime_server)
    worker = make_worker(realtime_server, channel_layer, aredis, redis_prefix)
    try:
        async with running(worker):
            await receiver.wait_for(1000, "seq")
            await asyncio.to_thread(produce, 1, "marker")
            await receiver.wait_for(1, "marker")
            await eventually(lambda: worker.outbox is not None and worker.outbox.stats.sent == 1001)
    finally:
        await receiver.close()
    assert indexes(receiver) == list(range(1000))
    assert [m["event"] for m in receiver.messages][-1] == "marker"
    [group] = await aredis.xinfo_groups(f"{redis_prefix}:outbox")
    assert (group["pending"], group["lag"]) == (0, 0)
    assert int(await aredis.get(f"{redis_prefix}:outbox:sent")) == 1001


async def test_server_restart_mid_stream_loses_nothing(
    channel_layer: Any,
    broadcast_settings: Callable[..., Any],
    aredis: Any,
    redis_prefix: str,
) -> None:
    first = DevServer()
    await first.start()
    port = first.port
    gate = Gate(port)
    await gate.start()
    broadcast_settings(first)
    receivers = [await Receiver.start(first)]
    second: DevServer | None = None
    # The worker reaches the server through the gate, so the test decides when it may
    # reconnect: after the new server's receiver has joined.
    worker = make_worker(f"http://127.0.0.1:{gate.port}", channel_layer, aredis, redis_prefix,
                         key=first.service_role_key)  # fmt: skip
    try:
        async with running(worker):
            # Replies are held back, so sends are in flight (unacknowledged) at the stop.
            first.faults.reply_delay = 0.3
            await asyncio.to_thread(produce, 300)
            await receivers[0].wait_for(100, "seq")
            gate.cut()
            await first.stop()
            second = DevServer(port=port)  # the same port: DevServer binds with SO_REUSEADDR
            await second.start()
            assert second.port == port
            receivers.append(await Receiver.start(second))
            gate.open = True
            await eventually(lambda: worker.stats.reconnects >= 1, within=10)
            await asyncio.to_thread(produce, 1, "marker")
            await receivers[1].wait_for(1, "marker")
            await eventually(lambda: worker.outbox is not None and worker.outbox.stats.sent == 301)
    finally:
        for receiver in receivers:
            await receiver.close()
        await gate.stop()
        if second is not None:
            await second.stop()
        await first.stop()
    before, after = indexes(receivers[0]), indexes(receivers[1])
    # Nothing lost: every entry reached a server; each server saw them in order.
    assert sorted(set(before) | set(after)) == list(range(300))
    assert before == sorted(before)
    assert after == sorted(after)
    assert len(after) == len(set(after))
    # Entries whose ack was lost with the first server were sent again (at-least-once).
    resent = set(before) & set(after)
    assert worker.outbox is not None
    assert len(resent) <= worker.outbox.stats.resent
    [group] = await aredis.xinfo_groups(f"{redis_prefix}:outbox")
    assert group["pending"] == 0


async def test_two_workers_one_active_no_duplicates_then_takeover(
    realtime_server: DevServer,
    channel_layer: Any,
    broadcast_settings: Callable[..., Any],
    aredis: Any,
    redis_prefix: str,
) -> None:
    broadcast_settings(realtime_server)
    receiver = await Receiver.start(realtime_server)
    subs = (Subscription("room1"),)
    first = make_worker(realtime_server, channel_layer, aredis, redis_prefix, *subs)
    second = make_worker(realtime_server, channel_layer, aredis, redis_prefix, *subs)
    assert first.lease is not None
    assert second.lease is not None
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    first_task = asyncio.create_task(first.run(stop_first))
    second_task: asyncio.Task[None] | None = None
    try:
        await eventually(first.ready.is_set)
        second_task = asyncio.create_task(second.run(stop_second))
        # The standby waits for the lease without connecting upstream.
        await eventually(lambda: second.lease is not None and second.lease.standby)
        assert await second.lease.holder_now() == first.lease.holder
        assert realtime_server.connections == 2  # the receiver and the active worker
        await asyncio.to_thread(produce, 50)
        await receiver.wait_for(50, "seq")
        assert not second.ready.is_set()
        # A clean stop releases the lease; the standby takes over.
        stop_first.set()
        await asyncio.wait_for(first_task, 20)
        await eventually(second.ready.is_set, within=10)
        await asyncio.to_thread(produce, 50, "seq", 50)
        await asyncio.to_thread(produce, 1, "marker")
        await receiver.wait_for(1, "marker")
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.wait_for(first_task, 20)
        if second_task is not None:
            await asyncio.wait_for(second_task, 20)
        await receiver.close()
    assert indexes(receiver) == list(range(100))
    assert await second.lease.holder_now() is None  # released by the clean stop


async def test_drops_past_the_retention_are_counted_logged_and_shown(
    realtime_server: DevServer,
    channel_layer: Any,
    broadcast_settings: Callable[..., Any],
    aredis: Any,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broadcast_settings(
        realtime_server,
        BROADCAST={"RETENTION_MESSAGES": 10, "RETENTION_SECONDS": 0.001},
    )
    await asyncio.to_thread(produce, 10)
    [(last_id, _)] = await aredis.xrevrange(f"{redis_prefix}:outbox", count=1)
    last_ms = int(last_id.split(b"-")[0])

    async def later() -> bool:
        seconds, micros = await aredis.time()
        return bool(seconds * 1000 + micros // 1000 > last_ms + 1)

    await eventually(later)
    # Each new entry pushes the oldest (older than 1 ms, beyond the newest 10) out.
    await asyncio.to_thread(produce, 5, "seq", 10)
    assert int(await aredis.get(f"{redis_prefix}:outbox:dropped")) == 5
    assert await aredis.xlen(f"{redis_prefix}:outbox") == 10
    out = io.StringIO()
    await asyncio.to_thread(call_command, "realtime_worker", "--status", stdout=out)
    assert "dropped: 5" in out.getvalue()
    assert "lease holder: none (no active worker)" in out.getvalue()

    receiver = await Receiver.start(realtime_server)
    worker = make_worker(realtime_server, channel_layer, aredis, redis_prefix)
    caplog.set_level(logging.WARNING, logger="supa_realtime.worker")
    try:
        async with running(worker):
            await receiver.wait_for(10, "seq")
            await eventually(lambda: "5 outbox broadcasts were dropped" in caplog.text)
            sync_redis = _sync(aredis)
            await eventually(lambda: read_status(sync_redis, OutboxKeys(redis_prefix))["connected"])
            sync_redis.close()
            out = io.StringIO()
            await asyncio.to_thread(call_command, "realtime_worker", "--status", stdout=out)
    finally:
        await receiver.close()
    assert indexes(receiver) == list(range(5, 15))
    text = out.getvalue()
    assert worker.lease is not None
    assert f"lease holder: {worker.lease.holder}" in text
    assert "connected: yes" in text
    assert "dropped: 5" in text
    assert "5 dropped in all" in caplog.text


async def test_entries_the_server_refuses_are_logged_counted_and_skipped(
    realtime_server_factory: Any,
    channel_layer: Any,
    broadcast_settings: Callable[..., Any],
    aredis: Any,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from supa_realtime.devserver.limits import Limits

    server = await realtime_server_factory(limits=Limits(max_payload_kb=1))
    broadcast_settings(server)
    receiver = await Receiver.start(server)
    worker = make_worker(server, channel_layer, aredis, redis_prefix)
    try:
        async with running(worker):
            await asyncio.to_thread(broadcast, "room1", "seq", {"i": 0, "pad": "x" * 2000})
            await asyncio.to_thread(produce, 1, "seq", 1)
            await receiver.wait_for(1, "seq")
            await eventually(lambda: int(worker.outbox.stats.failed if worker.outbox else 0) == 1)
    finally:
        await receiver.close()
    assert indexes(receiver) == [1]
    assert "refused by the server, not sent" in caplog.text
    assert "payload_size_exceeded" in caplog.text
    assert int(await aredis.get(f"{redis_prefix}:outbox:failed")) == 1
    status = read_status(_sync(aredis), OutboxKeys(redis_prefix))
    assert status["failed"] == 1
    assert status["outbox_pending"] == 0


def _sync(aredis: Any) -> Any:
    import redis

    kwargs = aredis.connection_pool.connection_kwargs
    return redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0))


def test_group_name_is_stable() -> None:
    assert GROUP == "supa_realtime"


def _address(host: Any) -> str:
    return str(host["address"] if isinstance(host, dict) else host)


class _Process:
    """``manage.py realtime_worker`` with its output collected line by line."""

    def __init__(self, server: DevServer, config: dict[str, Any], prefix: str) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
            "SUPABASE_URL": server.http_url,
            "SUPABASE_KEY": server.service_role_key,
            "REDIS_URL": _address(config["hosts"][0]),
            "CHANNEL_LAYER_PREFIX": config["prefix"],
            "SUPA_REALTIME_REDIS_PREFIX": prefix,
            "SUPA_REALTIME_TEST_SUBSCRIPTIONS": json.dumps([{"topic": "room1"}]),
            "PYTHONUNBUFFERED": "1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "realtime_worker", "-v", "1"],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = await asyncio.to_thread(self.proc.wait, 30)
        await asyncio.to_thread(self._reader.join, 10)
        return code


async def test_two_worker_processes_one_active_then_takeover(
    realtime_server: DevServer,
    channel_layer: Any,
    channel_layer_config: dict[str, Any],
    broadcast_settings: Callable[..., Any],
    aredis: Any,
    redis_prefix: str,
) -> None:
    broadcast_settings(realtime_server)
    capture = GroupCapture(channel_layer, group_for("room1"))
    await capture.start()
    receiver = await Receiver.start(realtime_server)
    first = _Process(realtime_server, channel_layer_config["CONFIG"], redis_prefix)
    second: _Process | None = None
    try:
        await eventually(lambda: "took the worker lease" in first.output, within=30)
        await eventually(lambda: realtime_server.subscribers("room1") >= 2, within=30)
        second = _Process(realtime_server, channel_layer_config["CONFIG"], redis_prefix)
        await eventually(lambda: "standby" in second.output, within=30)
        assert realtime_server.connections == 2  # the receiver and the active worker only
        await asyncio.to_thread(produce, 20)
        await receiver.wait_for(20, "seq")
        assert await first.stop() == 0
        await eventually(lambda: "took the worker lease" in second.output, within=30)
        await asyncio.to_thread(produce, 20, "seq", 20)
        await asyncio.to_thread(produce, 1, "marker")
        await receiver.wait_for(1, "marker")
        messages = await capture.wait_for(41)
        assert await second.stop() == 0
    finally:
        for process in (first, second):
            if process is not None:
                await process.stop()
        await receiver.close()
        await capture.stop()
    assert indexes(receiver) == list(range(40))
    # Each broadcast reached the group once: from broadcast() itself, never relayed back.
    assert [(m["event"], m["payload"]["i"]) for m in messages] == [
        *(("seq", i) for i in range(40)),
        ("marker", 0),
    ]
    assert len(capture.messages) == 41
    assert "worker stopped" in first.output
    assert realtime_server.service_role_key not in first.output + second.output
    assert await aredis.get(f"{redis_prefix}:worker:lease") is None


async def test_an_idle_on_demand_channel_is_left_after_the_linger(
    realtime_server: DevServer,
    channel_layer: Any,
    broadcast_settings: Callable[..., Any],
    aredis: Any,
    redis_prefix: str,
) -> None:
    broadcast_settings(realtime_server)
    receiver = await Receiver.start(realtime_server)
    worker = make_worker(realtime_server, channel_layer, aredis, redis_prefix, linger=0.2)
    try:
        async with running(worker):
            await asyncio.to_thread(produce, 1)
            await receiver.wait_for(1, "seq")
            assert realtime_server.subscribers("room1") == 2
            await eventually(lambda: realtime_server.subscribers("room1") == 1)
            # The next broadcast joins again.
            await asyncio.to_thread(produce, 1, "seq", 1)
            await receiver.wait_for(2, "seq")
    finally:
        await receiver.close()
    assert indexes(receiver) == [0, 1]


async def test_a_worker_that_loses_its_lease_stops(
    realtime_server: DevServer,
    channel_layer: Any,
    aredis: Any,
    redis_prefix: str,
) -> None:
    from supa_realtime.exceptions import LeaseLost

    worker = make_worker(realtime_server, channel_layer, aredis, redis_prefix, lease_ttl=0.6)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await eventually(worker.ready.is_set)
        # Another worker took the lease (as after a long stall of this one).
        await aredis.set(f"{redis_prefix}:worker:lease", "someone-else", px=5000)
        with pytest.raises(LeaseLost, match="taken by another worker"):
            await asyncio.wait_for(task, 10)
    finally:
        stop.set()
        if not task.done():
            await asyncio.wait_for(task, 10)
    assert realtime_server.connections == 0
    # It did not release a lease that is no longer its own.
    assert await aredis.get(f"{redis_prefix}:worker:lease") == b"someone-else"


def test_status_without_redis_is_a_command_error(settings: Any) -> None:
    from django.core.management.base import CommandError

    settings.SUPA_REALTIME = {**settings.SUPA_REALTIME, "REDIS_URL": "redis://:pw@127.0.0.1:9/0"}
    with pytest.raises(CommandError, match="cannot read the status from Redis") as info:
        call_command("realtime_worker", "--status", stdout=io.StringIO())
    assert "pw" not in str(info.value)


async def test_entries_trimmed_after_a_worker_read_them_are_counted(
    realtime_server: DevServer,
    channel_layer: Any,
    broadcast_settings: Callable[..., Any],
    aredis: Any,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broadcast_settings(realtime_server)
    stream = f"{redis_prefix}:outbox"
    await asyncio.to_thread(produce, 5)
    # A worker read three entries and died before Supabase acknowledged them...
    await aredis.xreadgroup(GROUP, "active", {stream: ">"}, count=3)
    # ...and they were trimmed from the stream before any worker came back.
    [(third, _)] = (await aredis.xrange(stream, count=3))[2:]
    ms, seq = third.decode().split("-")
    await aredis.xtrim(stream, minid=f"{ms}-{int(seq) + 1}", approximate=False)
    receiver = await Receiver.start(realtime_server)
    worker = make_worker(realtime_server, channel_layer, aredis, redis_prefix)
    caplog.set_level(logging.WARNING, logger="supa_realtime.worker")
    try:
        async with running(worker):
            await receiver.wait_for(2, "seq")
            await eventually(lambda: "3 outbox broadcasts were dropped" in caplog.text)
    finally:
        await receiver.close()
    assert indexes(receiver) == [3, 4]
    assert int(await aredis.get(f"{redis_prefix}:outbox:dropped")) == 3
    [group] = await aredis.xinfo_groups(stream)
    assert group["pending"] == 0
