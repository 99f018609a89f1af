"""broadcast() / abroadcast(): call-site validation, after-commit sending, and delivery once
to the official client (through the worker and the local server) and to a Channels group."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import SynchronousOnlyOperation
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import RequestFactory

import supa_realtime
from supa_realtime import abroadcast, broadcast
from supa_realtime.broadcast import MAX_NAME_LENGTH, prepare
from supa_realtime.conf import Subscription
from supa_realtime.devserver import DevServer
from supa_realtime.exceptions import InvalidBroadcast
from supa_realtime.groups import group_for
from supa_realtime.testing import GroupCapture
from supa_realtime.testing.devserver import eventually
from tests.broadcast_support import (
    Receiver,
    make_worker,
    running,
)

TOPIC = "realtime:room1"
pytestmark = pytest.mark.django_db(transaction=True)


def send_view(request: HttpRequest) -> HttpResponse:
    """A small sync view, as users write them."""
    data = json.loads(request.body)
    broadcast("room1", data["event"], data["payload"])
    return JsonResponse({"ok": True}, status=201)


def rollback_view(request: HttpRequest) -> HttpResponse:
    try:
        with transaction.atomic():
            broadcast("room1", "seq", {"n": "rolled back"})
            raise RuntimeError("abort the transaction")
    except RuntimeError:
        pass
    return HttpResponse(status=409)


def post(view: Callable[[HttpRequest], HttpResponse], body: dict[str, Any]) -> HttpResponse:
    request = RequestFactory().post("/send", data=json.dumps(body), content_type="application/json")
    return view(request)


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "event", "payload", "match"),
    [
        ("", "e", {}, "topic is empty"),
        ("realtime:", "e", {}, "names no channel"),
        (7, "e", {}, "topic must be a str, not int"),
        ("x" * (MAX_NAME_LENGTH + 1), "e", {}, "topic is 256 characters long"),
        ("room1", "", {}, "event is empty"),
        ("room1", None, {}, "event must be a str, not NoneType"),
        ("room1", "e" * (MAX_NAME_LENGTH + 1), {}, "event is 256 characters long"),
        ("room1", "e", [1, 2], "must be a dict .* not list"),
        ("room1", "e", "text", "must be a dict .* not str"),
        ("room1", "e", {"when": object()}, "holds a builtins.object"),
        ("room1", "e", {"s": {1, 2}}, "holds a builtins.set"),
        ("room1", "e", {"n": 2**70}, "cannot be encoded as JSON"),
    ],
)
def test_invalid_broadcasts_raise_at_the_call(
    broadcast_settings: Callable[..., Any], topic: Any, event: Any, payload: Any, match: str
) -> None:
    broadcast_settings()
    with pytest.raises(InvalidBroadcast, match=match):
        broadcast(topic, event, payload)


def test_payload_over_the_limit_names_the_size_and_setting(
    broadcast_settings: Callable[..., Any],
) -> None:
    broadcast_settings(BROADCAST={"MAX_PAYLOAD_BYTES": 100})
    with pytest.raises(InvalidBroadcast) as info:
        broadcast("room1", "e", {"text": "x" * 100})
    assert "111 bytes as JSON, over the 100-byte limit" in str(info.value)
    assert 'SUPA_REALTIME["BROADCAST"]["MAX_PAYLOAD_BYTES"]' in str(info.value)
    assert isinstance(info.value, ValueError)


def test_default_limit_is_the_free_plan(broadcast_settings: Callable[..., Any]) -> None:
    broadcast_settings()
    prepare("room1", "e", {"text": "x" * 255_000})
    with pytest.raises(InvalidBroadcast, match="over the 256000-byte limit"):
        prepare("room1", "e", {"text": "x" * 256_000})


def test_unknown_transport(broadcast_settings: Callable[..., Any]) -> None:
    broadcast_settings()
    with pytest.raises(InvalidBroadcast, match='transport must be "worker" or "rest"'):
        broadcast("room1", "e", {}, transport="carrier-pigeon")  # type: ignore[arg-type]


def test_django_types_are_encoded_like_djangojsonencoder() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    prepared = prepare(
        "room1",
        "e",
        {
            "at": datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC),
            "day": datetime.date(2026, 1, 2),
            "price": decimal.Decimal("9.90"),
            "id": ident,
            "took": datetime.timedelta(seconds=90),
        },
        max_payload_bytes=1000,
    )
    assert prepared.payload == {
        "at": "2026-01-02T03:04:05.678Z",
        "day": "2026-01-02",
        "price": "9.90",
        "id": str(ident),
        "took": "P0DT00H01M30S",
    }
    assert prepared.topic == TOPIC


def test_the_package_exports_them_lazily() -> None:
    assert supa_realtime.abroadcast is abroadcast
    assert callable(supa_realtime.broadcast)


async def test_sync_broadcast_in_async_code_points_to_abroadcast(
    broadcast_settings: Callable[..., Any],
) -> None:
    broadcast_settings()
    with pytest.raises(SynchronousOnlyOperation, match="abroadcast"):
        broadcast("room1", "e", {})


# -- end to end ----------------------------------------------------------------------------


async def test_view_broadcast_reaches_official_client_and_group_once(
    realtime_server: DevServer,
    channel_layer: Any,
    broadcast_settings: Callable[..., Any],
    aredis: Any,
    redis_prefix: str,
) -> None:
    broadcast_settings(realtime_server)
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    receiver = await Receiver.start(realtime_server)
    # The worker also relays room1: its own send must not come back into the group.
    worker = make_worker(
        realtime_server, channel_layer, aredis, redis_prefix, Subscription("room1")
    )
    try:
        async with running(worker):
            await eventually(lambda: worker.ready.is_set())
            response = await asyncio.to_thread(
                post, send_view, {"event": "hello", "payload": {"text": "hi", "n": 1}}
            )
            assert response.status_code == 201
            await asyncio.to_thread(post, send_view, {"event": "marker", "payload": {}})
            await receiver.wait_for(1, "marker")
            await capture.wait_for(2)
            await eventually(lambda: worker.outbox is not None and worker.outbox.stats.sent == 2)
    finally:
        await receiver.close()
        await capture.stop()
    assert [(m["event"], m["payload"]) for m in receiver.messages] == [
        ("hello", {"text": "hi", "n": 1}),
        ("marker", {}),
    ]
    assert capture.messages == [
        {
            "type": "realtime.broadcast",
            "topic": TOPIC,
            "event": "hello",
            "payload": {"text": "hi", "n": 1},
        },
        {"type": "realtime.broadcast", "topic": TOPIC, "event": "marker", "payload": {}},
    ]
    assert worker.stats.frames_relayed == 0


async def test_rolled_back_transaction_sends_nothing_anywhere(
    realtime_server: DevServer,
    channel_layer: Any,
    broadcast_settings: Callable[..., Any],
    aredis: Any,
    redis_prefix: str,
) -> None:
    broadcast_settings(realtime_server)
    capture = GroupCapture(channel_layer, group_for(TOPIC))
    await capture.start()
    receiver = await Receiver.start(realtime_server)
    worker = make_worker(realtime_server, channel_layer, aredis, redis_prefix)
    try:
        async with running(worker):
            response = await asyncio.to_thread(post, rollback_view, {})
            assert response.status_code == 409
            await asyncio.to_thread(post, send_view, {"event": "marker", "payload": {}})
            await receiver.wait_for(1, "marker")
            await capture.wait_for(1)
    finally:
        await receiver.close()
        await capture.stop()
    assert [m["event"] for m in receiver.messages] == ["marker"]
    assert [m["event"] for m in capture.messages] == ["marker"]
    assert await aredis.xlen(f"{redis_prefix}:outbox") == 1


def test_inside_atomic_waits_for_the_commit(
    broadcast_settings: Callable[..., Any], redis_server: str, redis_prefix: str
) -> None:
    import redis

    broadcast_settings()
    client: Any = redis.Redis.from_url(redis_server)
    stream = f"{redis_prefix}:outbox"
    try:
        with transaction.atomic():
            broadcast("room1", "seq", {"n": 1})
            assert client.xlen(stream) == 0
        assert client.xlen(stream) == 1
        [(_, fields)] = client.xrange(stream)
    finally:
        client.close()
    head, payload = fields[b"m"].split(b"\n", 1)
    topic, event, private, created = json.loads(head)
    assert (topic, event, private) == ("realtime:room1", "seq", False)
    assert isinstance(created, float)
    assert json.loads(payload) == {"n": 1}


async def test_abroadcast_reaches_both_sides(
    realtime_server: DevServer,
    channel_layer: Any,
    broadcast_settings: Callable[..., Any],
    aredis: Any,
    redis_prefix: str,
) -> None:
    broadcast_settings(realtime_server)
    capture = GroupCapture(channel_layer, group_for("realtime:room1"))
    await capture.start()
    receiver = await Receiver.start(realtime_server)
    worker = make_worker(realtime_server, channel_layer, aredis, redis_prefix)
    try:
        async with running(worker):
            await abroadcast("room1", "note", {"text": "from async"})
            await receiver.wait_for(1, "note")
            await capture.wait_for(1)
            # The on-demand channel of the outbox is the worker's only join.
            assert realtime_server.subscribers(TOPIC) == 2
    finally:
        await receiver.close()
        await capture.stop()
    assert [(m["event"], m["payload"]) for m in receiver.messages] == [
        ("note", {"text": "from async"})
    ]
    assert capture.messages[0]["payload"] == {"text": "from async"}


async def test_local_delivery_in_one_round_trip_or_the_layers_own_way(
    broadcast_settings: Callable[..., Any],
    channel_layer: Any,
    channel_layer_config: dict[str, Any],
    settings: Any,
) -> None:
    from channels.layers import get_channel_layer

    from supa_realtime.broadcast import _one_trip_layer

    broadcast_settings()
    host = channel_layer_config["CONFIG"]["hosts"][0]
    redis_url = host["address"] if isinstance(host, dict) else host
    assert _one_trip_layer(get_channel_layer(), redis_url)
    capture = GroupCapture(channel_layer, group_for("room1"))
    await capture.start()
    try:
        await asyncio.to_thread(broadcast, "room1", "one-trip", {"n": 1})
        # Per-channel capacities are not handled by the single script: the layer's way is.
        settings.CHANNEL_LAYERS = {
            "default": {
                **channel_layer_config,
                "CONFIG": {**channel_layer_config["CONFIG"], "channel_capacity": {"x.*": 5}},
            }
        }
        assert not _one_trip_layer(get_channel_layer(), redis_url)
        await asyncio.to_thread(broadcast, "room1", "two-trips", {"n": 2})
        messages = await capture.wait_for(2)
    finally:
        await capture.stop()
    assert [(m["event"], m["payload"]) for m in messages] == [
        ("one-trip", {"n": 1}),
        ("two-trips", {"n": 2}),
    ]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"TRANSPORT": "smoke"}, r"SUPA_REALTIME\['BROADCAST'\]\['TRANSPORT'\] must be"),
        ({"MAX_PAYLOAD_BYTES": 0}, r"\['MAX_PAYLOAD_BYTES'\] must be a positive integer"),
        ({"RETENTION_SECONDS": -1}, r"\['RETENTION_SECONDS'\] must be a positive number"),
        ({"RETENTION_MESSAGES": 1.5}, r"\['RETENTION_MESSAGES'\] must be a positive integer"),
        ({"LINGERING": 3}, r"\['BROADCAST'\] has unknown key\(s\) 'LINGERING'"),
    ],
)
def test_malformed_broadcast_settings_name_the_setting(
    broadcast_settings: Callable[..., Any], value: dict[str, Any], match: str
) -> None:
    from supa_realtime.checks import check_settings
    from supa_realtime.exceptions import ConfigurationError

    broadcast_settings(BROADCAST=value)
    with pytest.raises(ConfigurationError, match=match):
        broadcast("room1", "e", {})
    [error] = [e for e in check_settings() if e.id == "supa_realtime.E007"]
    assert "BROADCAST" in error.msg


def test_importing_the_package_imports_no_django() -> None:
    import subprocess
    import sys

    code = (
        "import sys, supa_realtime; "
        "assert 'django' not in sys.modules, 'django imported'; "
        "assert 'supa_realtime.broadcast' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
