"""The Message type and its helpers."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from supa_realtime.phoenix.message import Message, full_topic, reply, subtopic, user_broadcast

REPLY_OK = Message("realtime:room1", "phx_reply", {"status": "ok", "response": {"a": 1}}, ref="1")

STATUS: list[tuple[Message, str | None, Any, bool]] = [
    (REPLY_OK, "ok", {"a": 1}, True),
    (
        Message("t", "phx_reply", {"status": "error", "response": "payload_size_exceeded"}),
        "error",
        "payload_size_exceeded",
        True,
    ),
    (Message("t", "phx_reply", {"response": {}}), None, {}, True),
    (Message("t", "phx_reply", {"status": 1}), None, None, True),
    (Message("t", "phx_reply", ["not", "an", "object"]), None, None, True),
    (Message("t", "broadcast", {"status": "ok", "response": {}}), None, None, False),
]


@pytest.mark.parametrize(("msg", "status", "response", "is_reply"), STATUS)
def test_reply_accessors(msg: Message, status: str | None, response: Any, is_reply: bool) -> None:
    assert msg.status == status
    assert msg.response == response
    assert msg.is_reply is is_reply


def test_defaults_and_frozen() -> None:
    msg = Message("t", "e", {})
    assert (msg.ref, msg.join_ref, msg.binary) == (None, None, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.ref = "1"  # type: ignore[misc]


def test_reply_echoes_refs() -> None:
    request = Message("realtime:room1", "phx_join", {"config": {}}, ref="5", join_ref="3")
    assert reply(request, "ok", {"postgres_changes": []}) == Message(
        "realtime:room1",
        "phx_reply",
        {"status": "ok", "response": {"postgres_changes": []}},
        ref="5",
        join_ref="3",
    )
    # a heartbeat has no join_ref; the unmatched-topic reply drops it on purpose
    heartbeat = Message("phoenix", "heartbeat", {}, ref="12")
    assert reply(heartbeat, "ok", {}).join_ref is None
    assert reply(request, "error", {"reason": "unmatched topic"}, join_ref="9").join_ref == "9"


def test_user_broadcast() -> None:
    assert user_broadcast("realtime:room1", "cursor", {"x": 1}) == Message(
        "realtime:room1", "broadcast", {"type": "broadcast", "event": "cursor", "payload": {"x": 1}}
    )
    with_meta = user_broadcast(
        "realtime:room1", "INSERT", b"\x01", meta={"id": "u"}, ref="7", join_ref="3", binary=True
    )
    assert with_meta.payload == {
        "type": "broadcast",
        "event": "INSERT",
        "payload": b"\x01",
        "meta": {"id": "u"},
    }
    assert (with_meta.ref, with_meta.join_ref, with_meta.binary) == ("7", "3", True)


TOPICS = [
    ("realtime:room1", "room1"),
    ("room1", "room1"),
    ("realtime:", ""),
    ("realtime:realtime:x", "realtime:x"),
    ("phoenix", "phoenix"),
]


@pytest.mark.parametrize(("topic", "name"), TOPICS)
def test_subtopic(topic: str, name: str) -> None:
    assert subtopic(topic) == name


@pytest.mark.parametrize(
    ("name", "topic"),
    [("room1", "realtime:room1"), ("realtime:room1", "realtime:room1"), ("", "realtime:")],
)
def test_full_topic(name: str, topic: str) -> None:
    assert full_topic(name) == topic
    assert full_topic(subtopic(topic)) == topic
