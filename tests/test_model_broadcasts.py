"""Model hooks: after-commit sends, coalescing (savepoints included), suppression, errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.db import transaction

from supa_realtime.devserver import DevServer
from supa_realtime.exceptions import ConfigurationError, InvalidBroadcast
from supa_realtime.groups import group_for
from supa_realtime.model_broadcasts import (
    broadcasts_suppressed,
    coalesce,
    register,
    registered,
    suppress_broadcasts,
    unregister,
)
from supa_realtime.outbox import Entry
from supa_realtime.testing import GroupCapture
from tests.broadcast_app.models import Order, Quiet
from tests.broadcast_support import (
    Receiver,
    make_worker,
    running,
)

pytestmark = pytest.mark.django_db(transaction=True)

Sent = list[tuple[str, str, dict[str, Any]]]


@pytest.fixture
def sent(
    broadcast_settings: Callable[..., Any], redis_server: str, redis_prefix: str
) -> Iterator[Callable[[], Sent]]:
    """What reached the outbox so far: (topic, event, payload) in order."""
    broadcast_settings()
    client: Any = redis.Redis.from_url(redis_server)

    def read() -> Sent:
        entries = [Entry.from_fields(i, f) for i, f in client.xrange(f"{redis_prefix}:outbox")]
        return [(e.topic, e.event, json.loads(e.payload)) for e in entries]

    try:
        yield read
    finally:
        client.close()


def state(order: Order) -> dict[str, Any]:
    return {"pk": order.pk, "number": order.number, "total": str(order.total),
            "customer": order.customer}  # fmt: skip


def both(order_pk: int, event: str, payload: dict[str, Any]) -> Sent:
    return [(f"realtime:orders:{order_pk}", event, payload), ("realtime:orders", event, payload)]


@pytest.mark.parametrize(
    ("events", "result"),
    [
        (["created"], "created"),
        (["created", "updated", "updated"], "created"),
        (["updated", "updated"], "updated"),
        (["updated", "deleted"], "deleted"),
        (["created", "updated", "deleted"], None),
        (["deleted", "created"], "created"),
        ([], None),
    ],
)
def test_coalesce_rule(events: list[str], result: str | None) -> None:
    assert coalesce(events) == result


def test_outside_a_transaction_each_change_sends_at_once(sent: Callable[[], Sent]) -> None:
    order = Order.objects.create(number="A-1", total=Decimal("9.90"), note="private")
    created = state(order)
    assert sent() == both(order.pk, "created", created)
    order.total = Decimal("12.00")
    order.save()
    updated = state(order)
    pk = order.pk
    order.delete()
    assert sent() == [
        *both(pk, "created", created),
        *both(pk, "updated", updated),
        *both(pk, "deleted", updated),
    ]
    assert "note" not in created  # only the allowlisted fields


def test_created_then_updated_in_one_transaction_is_one_created(sent: Callable[[], Sent]) -> None:
    with transaction.atomic():
        order = Order.objects.create(number="A-2")
        order.customer = "ada"
        order.save()
        order.total = Decimal("5.00")
        order.save()
        assert sent() == []
    assert sent() == both(order.pk, "created", state(order))


def test_updated_then_deleted_is_deleted(sent: Callable[[], Sent]) -> None:
    order = Order.objects.create(number="A-3")
    with transaction.atomic():
        order.customer = "bob"
        order.save()
        final = state(order)
        pk = order.pk
        order.delete()
    assert sent()[2:] == both(pk, "deleted", final)


def test_created_then_deleted_sends_nothing(sent: Callable[[], Sent]) -> None:
    with transaction.atomic():
        order = Order.objects.create(number="A-4")
        order.delete()
    assert sent() == []


def test_rolled_back_transaction_sends_nothing(sent: Callable[[], Sent]) -> None:
    with contextlib.suppress(RuntimeError), transaction.atomic():
        Order.objects.create(number="A-5")
        raise RuntimeError("roll back")
    assert sent() == []
    # A later transaction is not confused by what the rolled-back one left.
    with transaction.atomic():
        order = Order.objects.create(number="A-6")
    assert sent() == both(order.pk, "created", state(order))


def test_a_rolled_back_savepoint_is_left_out(sent: Callable[[], Sent]) -> None:
    with transaction.atomic():
        order = Order.objects.create(number="A-7", customer="kept")
        kept = state(order)
        with contextlib.suppress(RuntimeError), transaction.atomic():
            order.customer = "rolled back"
            order.save()
            raise RuntimeError("roll back the savepoint")
    assert sent() == both(order.pk, "created", kept)


def test_a_change_after_a_rolled_back_savepoint_is_sent(sent: Callable[[], Sent]) -> None:
    order = Order.objects.create(number="A-8")
    with transaction.atomic():
        with contextlib.suppress(RuntimeError), transaction.atomic():
            Order.objects.filter(pk=order.pk).update(customer="x")  # no signal
            order.customer = "first, rolled back"
            order.save()
            raise RuntimeError("roll back the savepoint")
        order.customer = "second, committed"
        order.save()
    assert sent()[2:] == both(order.pk, "updated", state(order))


def test_suppress_broadcasts_context_manager_and_decorators(sent: Callable[[], Sent]) -> None:
    with suppress_broadcasts():
        Order.objects.create(number="S-1")
        assert broadcasts_suppressed()
    assert not broadcasts_suppressed()

    @suppress_broadcasts()
    def bulk_import() -> None:
        for n in range(3):
            Order.objects.create(number=f"S-{n + 2}")

    bulk_import()

    @suppress_broadcasts()
    async def in_async() -> bool:
        return broadcasts_suppressed()

    assert asyncio.run(in_async()) is True
    assert sent() == []
    order = Order.objects.create(number="S-9")
    assert sent() == both(order.pk, "created", state(order))


def test_suppression_is_scoped_to_its_thread(sent: Callable[[], Sent]) -> None:
    seen: list[bool] = []
    with suppress_broadcasts():
        thread = threading.Thread(target=lambda: seen.append(broadcasts_suppressed()))
        thread.start()
        thread.join(10)
    assert seen == [False]


def test_what_does_not_send(sent: Callable[[], Sent]) -> None:
    Quiet.objects.create(name="not registered")
    Order.objects.bulk_create([Order(number="B-1")])
    Order.objects.update(customer="everyone")
    assert sent() == []


def test_events_subset_and_payload_callable(sent: Callable[[], Sent]) -> None:
    original = registered(Order)
    assert original is not None
    register(
        Order,
        topics=["shop:{customer}"],
        events=["deleted"],
        payload=lambda order, event: {"number": order.number, "event": event},
    )
    try:
        order = Order.objects.create(number="C-1", customer="ada")
        order.save()
        order.delete()
    finally:
        register(Order, topics=original.topics, fields=original.fields)
    assert sent() == [("realtime:shop:ada", "deleted", {"number": "C-1", "event": "deleted"})]


def test_invalid_payload_raises_at_save(sent: Callable[[], Sent]) -> None:
    original = registered(Order)
    assert original is not None
    register(Order, topics=["orders"], payload=lambda order, event: {"bad": object()})
    try:
        with pytest.raises(InvalidBroadcast, match=r"holds a builtins\.object"):
            Order.objects.create(number="D-1")
    finally:
        register(Order, topics=original.topics, fields=original.fields)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"topics": ["t"]}, "either fields=.* or payload=callable"),
        ({"topics": ["t"], "fields": ["x"], "payload": lambda i, e: {}}, "either fields"),
        ({"topics": ["t"], "fields": ["nope"]}, "has no field 'nope'"),
        ({"topics": [], "fields": ["name"]}, "give topics"),
        ({"topics": ["t"], "fields": ["name"], "events": ["saved"]}, "events must be some of"),
    ],
)
def test_registration_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        register(Quiet, **kwargs)
    assert registered(Quiet) is None
    unregister(Quiet)


async def test_model_change_reaches_official_client_and_group(
    realtime_server: DevServer,
    channel_layer: Any,
    broadcast_settings: Callable[..., Any],
    aredis: Any,
    redis_prefix: str,
) -> None:
    broadcast_settings(realtime_server)
    capture = GroupCapture(channel_layer, group_for("orders"))
    await capture.start()
    receiver = await Receiver.start(realtime_server, "orders")
    worker = make_worker(realtime_server, channel_layer, aredis, redis_prefix)

    def change() -> dict[str, Any]:
        with transaction.atomic():
            order = Order.objects.create(number="E-1")
            order.total = Decimal("3.50")
            order.save()
        return state(order)

    try:
        async with running(worker):
            final = await asyncio.to_thread(change)
            await receiver.wait_for(1, "created")
            await capture.wait_for(1)
    finally:
        await receiver.close()
        await capture.stop()
    assert [(m["event"], m["payload"]) for m in receiver.messages] == [("created", final)]
    assert [(m["event"], m["payload"]) for m in capture.messages] == [("created", final)]
