"""V1 and V2 serializers against every example frame of PROTOCOL.md, both ways, both roles."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supa_realtime.exceptions import LocalProtocolError, RemoteProtocolError
from supa_realtime.phoenix.message import Message, user_broadcast
from supa_realtime.phoenix.serializer import (
    Role,
    Serializer,
    V1Serializer,
    V2Serializer,
    decode_binary,
    encode_user_broadcast,
    encode_user_broadcast_push,
    serializer_for,
)

# Machines are noisy: no example is timed.
NO_DEADLINE = settings(deadline=None)

Vsn = Literal["1.0.0", "2.0.0"]
TOPIC = "realtime:room1"
UUID = "8c1f0d0e-4f6b-11f0-9a2e-0242ac120002"

JOIN_PAYLOAD_JS = {
    "config": {
        "broadcast": {"ack": False, "self": False},
        "presence": {"key": "", "enabled": False},
        "postgres_changes": [],
        "private": False,
    },
    "access_token": "eyJ...",
}
JOIN_PAYLOAD_PY = {
    "config": {
        "broadcast": {"ack": False, "self": False},
        "presence": {"key": "", "enabled": False},
        "private": False,
        "postgres_changes": [{"event": "*", "schema": "public", "table": "todos"}],
    },
    "access_token": "eyJ...",
}
JOIN_OK = {"status": "ok", "response": {"postgres_changes": []}}
JOIN_OK_BINDINGS = {
    "status": "ok",
    "response": {
        "postgres_changes": [{"id": 106243155, "event": "*", "schema": "public", "table": "test"}]
    },
}
OK_EMPTY = {"status": "ok", "response": {}}
SYSTEM = {
    "extension": "postgres_changes",
    "status": "ok",
    "message": "Subscribed to PostgreSQL",
    "channel": "room1",
}
CHANGE = {
    "ids": [104868189, 33112240],
    "data": {
        "schema": "public",
        "table": "test",
        "commit_timestamp": "2025-11-19T00:22:40.877Z",
        "type": "UPDATE",
        "columns": [
            {"name": "id", "type": "int8"},
            {"name": "created_at", "type": "timestamptz"},
            {"name": "text", "type": "text"},
        ],
        "record": {"id": 46, "text": "content", "created_at": "2025-11-03T09:32:55+00:00"},
        "old_record": {"id": 46},
        "errors": None,
    },
}
CURSOR = {"type": "broadcast", "event": "cursor", "payload": {"x": 1}}
PRESENCE_STATE = {
    "user-42": {
        "metas": [
            {"phx_ref": "GHlA1fShRjMmZhnL", "user_id": 42, "online_at": "2026-01-01T00:00:00Z"}
        ]
    },
    "9c1e0a4e-uuid": {
        "metas": [
            {"phx_ref": "GHk99Q_ez6-GzaeG", "name": "Bob"},
            {"phx_ref": "GHk-wA8Z61GGzeoG", "name": "Bob (2nd tab)"},
        ]
    },
}
PRESENCE_DIFF = {
    "joins": {
        "user-42": {
            "metas": [
                {
                    "phx_ref": "GHlE8VLvxuKGzQJN",
                    "phx_ref_prev": "GHlA1fShRjMmZhnL",
                    "user_id": 42,
                    "status": "away",
                }
            ]
        }
    },
    "leaves": {
        "user-42": {"metas": [{"phx_ref": "GHlA1fShRjMmZhnL", "user_id": 42, "status": "online"}]}
    },
}
DB_BROADCAST = {
    "event": "INSERT",
    "type": "broadcast",
    "meta": {"id": UUID},
    "payload": {
        "operation": "INSERT",
        "schema": "public",
        "table": "todos",
        "record": {"id": 1, "details": "x"},
        "old_record": None,
        "id": UUID,
    },
}


def _j(value: Any) -> str:
    return orjson.dumps(value).decode()


# (name, vsn, sender role, frame as PROTOCOL.md shows it, message, our exact encoding of it)
# The encoding differs from the frame only where the document quotes a peer that orders V1
# keys differently (the Python client, realtime's server) or omits a client's join_ref.
FRAMES: list[tuple[str, Vsn, Role, str, Message, str]] = []


def frame(name: str, vsn: Vsn, sender: Role, wire: str, msg: Message, canonical: str = "") -> None:
    FRAMES.append((name, vsn, sender, wire, msg, canonical or wire))


# §1.5 / §1.6 / §3.2 joins
frame(
    "v1 join (js legacy)",
    "1.0.0",
    "client",
    f'{{"topic":"realtime:room1","event":"phx_join","payload":{_j(JOIN_PAYLOAD_JS)},"ref":"1","join_ref":"1"}}',
    Message(TOPIC, "phx_join", JOIN_PAYLOAD_JS, ref="1", join_ref="1"),
)
frame(
    "v1 join (python)",
    "1.0.0",
    "client",
    f'{{"event":"phx_join","payload":{_j(JOIN_PAYLOAD_PY)},"topic":"realtime:room1","ref":"1","join_ref":null}}',
    Message(TOPIC, "phx_join", JOIN_PAYLOAD_PY, ref="1"),
    f'{{"topic":"realtime:room1","event":"phx_join","payload":{_j(JOIN_PAYLOAD_PY)},"ref":"1","join_ref":null}}',
)
frame(
    "v2 join (minimal)",
    "2.0.0",
    "client",
    '["1","1","realtime:room1","phx_join",{"config":{}}]',
    Message(TOPIC, "phx_join", {"config": {}}, ref="1", join_ref="1"),
)
frame(
    "v2 join (realtime-js)",
    "2.0.0",
    "client",
    f'["3","3","realtime:room1","phx_join",{_j(JOIN_PAYLOAD_JS)}]',
    Message(TOPIC, "phx_join", JOIN_PAYLOAD_JS, ref="3", join_ref="3"),
)
# join replies (§1.5, §1.6, §3.4, §3.5)
frame(
    "v1 join reply",
    "1.0.0",
    "server",
    '{"topic":"realtime:room1","event":"phx_reply","payload":{"status":"ok","response":{"postgres_changes":[]}},"ref":"1"}',
    Message(TOPIC, "phx_reply", JOIN_OK, ref="1"),
)
frame(
    "v2 join reply",
    "2.0.0",
    "server",
    '["1","1","realtime:room1","phx_reply",{"status":"ok","response":{"postgres_changes":[]}}]',
    Message(TOPIC, "phx_reply", JOIN_OK, ref="1", join_ref="1"),
)
frame(
    "v1 join reply with bindings",
    "1.0.0",
    "server",
    f'{{"topic":"realtime:room1","event":"phx_reply","payload":{_j(JOIN_OK_BINDINGS)},"ref":"1"}}',
    Message(TOPIC, "phx_reply", JOIN_OK_BINDINGS, ref="1"),
)
frame(
    "v2 join reply with bindings",
    "2.0.0",
    "server",
    f'["1","1","realtime:room1","phx_reply",{_j(JOIN_OK_BINDINGS)}]',
    Message(TOPIC, "phx_reply", JOIN_OK_BINDINGS, ref="1", join_ref="1"),
)
frame(
    "v1 join error",
    "1.0.0",
    "server",
    '{"topic":"realtime:room1","event":"phx_reply","payload":{"status":"error","response":'
    '{"reason":"Unauthorized: You do not have permissions to read from this Channel topic: '
    'room1"}},"ref":"1"}',
    Message(
        TOPIC,
        "phx_reply",
        {
            "status": "error",
            "response": {
                "reason": "Unauthorized: You do not have permissions to read from this "
                "Channel topic: room1"
            },
        },
        ref="1",
    ),
)
frame(
    "v2 join error",
    "2.0.0",
    "server",
    '["1","1","realtime:room1","phx_reply",{"status":"error","response":'
    '{"reason":"ChannelRateLimitReached: Too many channels"}}]',
    Message(
        TOPIC,
        "phx_reply",
        {"status": "error", "response": {"reason": "ChannelRateLimitReached: Too many channels"}},
        ref="1",
        join_ref="1",
    ),
)
# §2 heartbeats
frame(
    "v1 heartbeat (python)",
    "1.0.0",
    "client",
    '{"event":"heartbeat","payload":{},"topic":"phoenix","ref":null,"join_ref":null}',
    Message("phoenix", "heartbeat", {}),
    '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":null,"join_ref":null}',
)
frame(
    "v1 heartbeat (js legacy)",
    "1.0.0",
    "client",
    '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"12"}',
    Message("phoenix", "heartbeat", {}, ref="12"),
    '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"12","join_ref":null}',
)
frame(
    "v2 heartbeat",
    "2.0.0",
    "client",
    '[null,"2","phoenix","heartbeat",{}]',
    Message("phoenix", "heartbeat", {}, ref="2"),
)
frame(
    "v2 heartbeat (realtime-js)",
    "2.0.0",
    "client",
    '[null,"12","phoenix","heartbeat",{}]',
    Message("phoenix", "heartbeat", {}, ref="12"),
)
frame(
    "v1 heartbeat reply",
    "1.0.0",
    "server",
    '{"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"12"}',
    Message("phoenix", "phx_reply", OK_EMPTY, ref="12"),
)
frame(
    "v2 heartbeat reply",
    "2.0.0",
    "server",
    '[null,"12","phoenix","phx_reply",{"status":"ok","response":{}}]',
    Message("phoenix", "phx_reply", OK_EMPTY, ref="12"),
)
# §3.7 system messages
frame(
    "v1 system",
    "1.0.0",
    "server",
    f'{{"topic":"realtime:room1","event":"system","payload":{_j(SYSTEM)},"ref":null}}',
    Message(TOPIC, "system", SYSTEM),
)
frame(
    "v2 system",
    "2.0.0",
    "server",
    f'["3",null,"realtime:room1","system",{_j(SYSTEM)}]',
    Message(TOPIC, "system", SYSTEM, join_ref="3"),
)
# §4.3 postgres_changes
frame(
    "v1 postgres_changes",
    "1.0.0",
    "server",
    f'{{"topic":"realtime:room1","event":"postgres_changes","ref":null,"payload":{_j(CHANGE)}}}',
    Message(TOPIC, "postgres_changes", CHANGE),
    f'{{"topic":"realtime:room1","event":"postgres_changes","payload":{_j(CHANGE)},"ref":null}}',
)
frame(
    "v2 postgres_changes",
    "2.0.0",
    "server",
    f'[null,null,"realtime:room1","postgres_changes",{_j(CHANGE)}]',
    Message(TOPIC, "postgres_changes", CHANGE),
)
# §1.6 / §5 broadcasts
frame(
    "v2 broadcast fan-out",
    "2.0.0",
    "server",
    '[null,null,"realtime:room1","broadcast",{"event":"msg","payload":{"a":1},"type":"broadcast"}]',
    Message(TOPIC, "broadcast", {"event": "msg", "payload": {"a": 1}, "type": "broadcast"}),
)
frame(
    "v1 broadcast push (python)",
    "1.0.0",
    "client",
    '{"event":"broadcast","payload":{"type":"broadcast","event":"cursor","payload":{"x":1}},"topic":"realtime:room1","ref":"7","join_ref":null}',
    Message(TOPIC, "broadcast", CURSOR, ref="7"),
    '{"topic":"realtime:room1","event":"broadcast","payload":{"type":"broadcast","event":"cursor","payload":{"x":1}},"ref":"7","join_ref":null}',
)
frame(
    "v1 broadcast push (js legacy)",
    "1.0.0",
    "client",
    '{"topic":"realtime:room1","event":"broadcast","payload":{"type":"broadcast","event":"cursor","payload":{"x":1}},"ref":"7","join_ref":"3"}',
    Message(TOPIC, "broadcast", CURSOR, ref="7", join_ref="3"),
)
frame(
    "v2 broadcast push (text)",
    "2.0.0",
    "client",
    '["3","7","realtime:room1","broadcast",{"type":"broadcast","event":"cursor","payload":{"x":1}}]',
    Message(TOPIC, "broadcast", CURSOR, ref="7", join_ref="3"),
)
frame(
    "v2 broadcast ack",
    "2.0.0",
    "server",
    '["3","7","realtime:room1","phx_reply",{"status":"ok","response":{}}]',
    Message(TOPIC, "phx_reply", OK_EMPTY, ref="7", join_ref="3"),
)
frame(
    "v2 broadcast ack, payload too large",
    "2.0.0",
    "server",
    '["3","7","realtime:room1","phx_reply",{"status":"error","response":"payload_size_exceeded"}]',
    Message(
        TOPIC,
        "phx_reply",
        {"status": "error", "response": "payload_size_exceeded"},
        ref="7",
        join_ref="3",
    ),
)
frame(
    "v1 broadcast ack, payload too large (as documented)",
    "1.0.0",
    "server",
    '{"topic":"realtime:room1","event":"phx_reply","payload":{"status":"error",'
    '"response":{"error":"payload_size_exceeded"}},"ref":"7"}',
    Message(
        TOPIC,
        "phx_reply",
        {"status": "error", "response": {"error": "payload_size_exceeded"}},
        ref="7",
    ),
)
frame(
    "v1 broadcast fan-out",
    "1.0.0",
    "server",
    '{"topic":"realtime:room1","event":"broadcast","payload":{"event":"cursor","payload":{"x":1},"type":"broadcast"},"ref":null}',
    Message(TOPIC, "broadcast", {"event": "cursor", "payload": {"x": 1}, "type": "broadcast"}),
)
frame(
    "v1 database broadcast",
    "1.0.0",
    "server",
    f'{{"topic":"realtime:room1","event":"broadcast","ref":null,"payload":{_j(DB_BROADCAST)}}}',
    Message(TOPIC, "broadcast", DB_BROADCAST),
    f'{{"topic":"realtime:room1","event":"broadcast","payload":{_j(DB_BROADCAST)},"ref":null}}',
)
# §6 presence
frame(
    "v2 presence track",
    "2.0.0",
    "client",
    '["3","9","realtime:room1","presence",{"type":"presence","event":"track","payload":{"user_id":42,"online_at":"2026-01-01T00:00:00Z"}}]',
    Message(
        TOPIC,
        "presence",
        {
            "type": "presence",
            "event": "track",
            "payload": {"user_id": 42, "online_at": "2026-01-01T00:00:00Z"},
        },
        ref="9",
        join_ref="3",
    ),
)
frame(
    "v1 presence track (python)",
    "1.0.0",
    "client",
    '{"event":"presence","payload":{"event":"track","payload":{"user_id":42}},"topic":"realtime:room1","ref":"9","join_ref":null}',
    Message(TOPIC, "presence", {"event": "track", "payload": {"user_id": 42}}, ref="9"),
    '{"topic":"realtime:room1","event":"presence","payload":{"event":"track","payload":{"user_id":42}},"ref":"9","join_ref":null}',
)
frame(
    "v2 presence_state",
    "2.0.0",
    "server",
    f'["3",null,"realtime:room1","presence_state",{_j(PRESENCE_STATE)}]',
    Message(TOPIC, "presence_state", PRESENCE_STATE, join_ref="3"),
)
frame(
    "v1 presence_diff",
    "1.0.0",
    "server",
    f'{{"topic":"realtime:room1","event":"presence_diff","ref":null,"payload":{_j(PRESENCE_DIFF)}}}',
    Message(TOPIC, "presence_diff", PRESENCE_DIFF),
    f'{{"topic":"realtime:room1","event":"presence_diff","payload":{_j(PRESENCE_DIFF)},"ref":null}}',
)
# §7.1 access_token
frame(
    "v2 access_token",
    "2.0.0",
    "client",
    '["3","11","realtime:room1","access_token",{"access_token":"eyJ...new"}]',
    Message(TOPIC, "access_token", {"access_token": "eyJ...new"}, ref="11", join_ref="3"),
)
frame(
    "v1 access_token (python)",
    "1.0.0",
    "client",
    '{"event":"access_token","payload":{"access_token":"eyJ...new"},"topic":"realtime:room1","ref":"11","join_ref":null}',
    Message(TOPIC, "access_token", {"access_token": "eyJ...new"}, ref="11"),
    '{"topic":"realtime:room1","event":"access_token","payload":{"access_token":"eyJ...new"},"ref":"11","join_ref":null}',
)
# §7.2 leave, close, error, unmatched topic
frame(
    "v2 leave",
    "2.0.0",
    "client",
    '["3","12","realtime:room1","phx_leave",{}]',
    Message(TOPIC, "phx_leave", {}, ref="12", join_ref="3"),
)
frame(
    "v2 phx_close",
    "2.0.0",
    "server",
    '["3","3","realtime:room1","phx_close",{}]',
    Message(TOPIC, "phx_close", {}, ref="3", join_ref="3"),
)
frame(
    "v1 phx_close",
    "1.0.0",
    "server",
    '{"topic":"realtime:room1","event":"phx_close","payload":{},"ref":"3"}',
    Message(TOPIC, "phx_close", {}, ref="3"),
)
frame(
    "v1 phx_close (joined without join_ref)",
    "1.0.0",
    "server",
    '{"topic":"realtime:room1","event":"phx_close","payload":{},"ref":null}',
    Message(TOPIC, "phx_close", {}),
)
frame(
    "v2 phx_error",
    "2.0.0",
    "server",
    '["3","3","realtime:room1","phx_error",{}]',
    Message(TOPIC, "phx_error", {}, ref="3", join_ref="3"),
)
frame(
    "v1 phx_error",
    "1.0.0",
    "server",
    '{"topic":"realtime:room1","event":"phx_error","payload":{},"ref":"3"}',
    Message(TOPIC, "phx_error", {}, ref="3"),
)
frame(
    "v2 unmatched topic",
    "2.0.0",
    "server",
    '[null,"14","realtime:room1","phx_reply",'
    '{"status":"error","response":{"reason":"unmatched topic"}}]',
    Message(
        TOPIC, "phx_reply", {"status": "error", "response": {"reason": "unmatched topic"}}, ref="14"
    ),
)


def _other(role: Role) -> Role:
    return "server" if role == "client" else "client"


@pytest.mark.parametrize(("name", "vsn", "sender", "wire", "msg", "canonical"), FRAMES)
def test_example_frames(
    name: str, vsn: Vsn, sender: Role, wire: str, msg: Message, canonical: str
) -> None:
    del name
    # The receiver decodes the frame as the document shows it...
    assert serializer_for(vsn, _other(sender)).decode(wire) == msg
    # ... decoding does not depend on the role ...
    assert serializer_for(vsn, sender).decode(wire) == msg
    # ... the sender encodes the message to exactly one text, the same JSON as the document's.
    encoded = serializer_for(vsn, sender).encode(msg)
    assert encoded == canonical
    same_json = orjson.loads(wire)
    if vsn == "1.0.0" and sender == "client":
        same_json.setdefault("join_ref", None)
    assert orjson.loads(encoded) == same_json
    assert serializer_for(vsn, _other(sender)).decode(encoded) == msg


def test_v1_server_never_writes_join_ref() -> None:
    msg = Message(TOPIC, "phx_close", {}, ref="3", join_ref="3")
    assert V1Serializer("server").encode(msg) == (
        '{"topic":"realtime:room1","event":"phx_close","payload":{},"ref":"3"}'
    )
    assert V1Serializer("client").encode(msg) == (
        '{"topic":"realtime:room1","event":"phx_close","payload":{},"ref":"3","join_ref":"3"}'
    )


# --- binary frames (§1.7) -----------------------------------------------------------------

KIND3 = bytes.fromhex("03 01 01 0e 03 00 01 33 35") + b"realtime:room1" + b"msg" + b'{"a":1}'
META = {"id": UUID}
KIND4_META = bytes.fromhex("04 0e 03 2d 01") + b"realtime:room1msg" + _j(META).encode() + b'{"a":1}'
KIND4_RAW = bytes.fromhex("04 0e 03 00 00") + b"realtime:room1msg" + bytes.fromhex("de ad be ef")
KIND4_JSON = bytes.fromhex("04 0e 03 00 01") + b'realtime:room1msg{"a":1}'

BINARY: list[tuple[str, Role, bytes, Message]] = [
    (
        "kind 3 push (33 bytes)",
        "client",
        KIND3,
        user_broadcast(TOPIC, "msg", {"a": 1}, ref="5", join_ref="3", binary=True),
    ),
    (
        "kind 4 with metadata",
        "server",
        KIND4_META,
        user_broadcast(TOPIC, "msg", {"a": 1}, meta=META, binary=True),
    ),
    (
        "kind 4 binary payload",
        "server",
        KIND4_RAW,
        user_broadcast(TOPIC, "msg", b"\xde\xad\xbe\xef", binary=True),
    ),
    (
        "kind 4 json, no metadata",
        "server",
        KIND4_JSON,
        user_broadcast(TOPIC, "msg", {"a": 1}, binary=True),
    ),
]


def test_kind3_example_is_33_bytes() -> None:
    assert len(KIND3) == 33
    assert len(_j(META)) == 45


@pytest.mark.parametrize(("name", "sender", "data", "msg"), BINARY)
def test_binary_frames(name: str, sender: Role, data: bytes, msg: Message) -> None:
    del name
    assert V2Serializer(_other(sender)).decode(data) == msg
    assert V2Serializer(sender).decode(data) == msg
    assert decode_binary(data) == msg
    assert V2Serializer(sender).encode(msg) == data


def test_binary_helpers_match_the_examples() -> None:
    assert encode_user_broadcast_push("3", "5", TOPIC, "msg", {"a": 1}) == KIND3
    assert encode_user_broadcast(TOPIC, "msg", {"a": 1}, META) == KIND4_META
    assert encode_user_broadcast(TOPIC, "msg", b"\xde\xad\xbe\xef") == KIND4_RAW
    assert encode_user_broadcast(TOPIC, "msg", bytearray(b"\xde\xad\xbe\xef")) == KIND4_RAW


def test_v1_carries_a_binary_json_broadcast_as_text() -> None:
    msg = user_broadcast(TOPIC, "msg", {"a": 1}, meta=META, binary=True)
    text = V1Serializer("server").encode(msg)
    assert text == (
        '{"topic":"realtime:room1","event":"broadcast","payload":{"type":"broadcast",'
        f'"event":"msg","payload":{{"a":1}},"meta":{{"id":"{UUID}"}}}},"ref":null}}'
    )
    assert V1Serializer("client").decode(text) == dataclasses.replace(msg, binary=False)


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_unused_binary_kinds_are_named(kind: int) -> None:
    names = {0: "push", 1: "reply", 2: "broadcast"}
    data = bytes([kind, 1, 1, 1, 1]) + b"abcd"
    with pytest.raises(RemoteProtocolError, match=rf"kind {kind} \({names[kind]}\)"):
        V2Serializer("client").decode(data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty binary frame"),
        (b"\x09", r"kind 9 \(unknown\)"),
        (b"\x04\x0e\x03", "short header"),
        (b"\x03\x01\x01\x0e\x03\x00", "short header"),
        (b"\x04\x0e\x03\x00\x02realtime:room1msg", "unknown binary payload encoding 2"),
        (b"\x04\x0e\x03\x00\x01realtime:room1ms", "truncated"),
        (b"\x04\x02\x01\x00\x00\xff\xfex", "not UTF-8"),
        (b"\x04\x01\x01\x00\x01tm{", "binary JSON payload is not valid JSON"),
        (b"\x04\x01\x01\x02\x01tm[]1", "metadata must be an object"),
        (b"\x04\x01\x01\x01\x01tm{1", "metadata is not valid JSON"),
    ],
)
def test_bad_binary_frames(data: bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        V2Serializer("client").decode(data)


def test_binary_frame_on_v1_is_refused() -> None:
    for role in ("client", "server"):
        with pytest.raises(RemoteProtocolError, match=r"binary frame on a vsn 1\.0\.0 socket"):
            V1Serializer(role).decode(KIND4_JSON)


def test_bytes_payload_on_v1_raises() -> None:
    msg = user_broadcast(TOPIC, "msg", b"\x00\x01", binary=True)
    for role in ("client", "server"):
        with pytest.raises(LocalProtocolError, match=r"use 2\.0\.0"):
            V1Serializer(role).encode(msg)


def test_long_topic_falls_back_to_text_for_json() -> None:
    topic = "realtime:" + "x" * 247  # 256 bytes
    msg = user_broadcast(topic, "msg", {"a": 1}, binary=True)
    encoded = V2Serializer("server").encode(msg)
    assert encoded == (
        f'[null,null,"{topic}","broadcast",{{"type":"broadcast","event":"msg","payload":{{"a":1}}}}]'
    )
    assert V2Serializer("client").decode(encoded) == dataclasses.replace(msg, binary=False)
    pushed = V2Serializer("client").encode(dataclasses.replace(msg, ref="1", join_ref="1"))
    assert isinstance(pushed, str)
    # exactly 255 bytes still fits
    fits = user_broadcast("realtime:" + "x" * 246, "msg", {"a": 1}, binary=True)
    assert isinstance(V2Serializer("server").encode(fits), bytes)


@pytest.mark.parametrize(
    "msg",
    [
        user_broadcast("realtime:" + "x" * 247, "msg", b"raw", binary=True),
        user_broadcast(TOPIC, "e" * 256, b"raw", binary=True),
        user_broadcast(TOPIC, "msg", b"raw", meta={"k": "v" * 250}, binary=True),
    ],
)
def test_bytes_payload_that_cannot_fit_raises(msg: Message) -> None:
    with pytest.raises(LocalProtocolError, match="255 bytes"):
        V2Serializer("server").encode(msg)


@pytest.mark.parametrize(
    "payload",
    [None, "text", {"type": "broadcast"}, {"type": "broadcast", "event": 3, "payload": {}}],
)
def test_binary_broadcast_needs_an_event(payload: Any) -> None:
    msg = Message(TOPIC, "broadcast", payload, binary=True)
    with pytest.raises(LocalProtocolError, match="string 'event'"):
        V2Serializer("client").encode(msg)


def test_binary_broadcast_meta_must_be_an_object() -> None:
    msg = Message(TOPIC, "broadcast", {"event": "e", "payload": 1, "meta": [1]}, binary=True)
    with pytest.raises(LocalProtocolError, match="metadata must be an object"):
        V2Serializer("server").encode(msg)


@pytest.mark.parametrize("serializer", [V1Serializer("client"), V2Serializer("server")])
def test_unencodable_payload_raises(serializer: Serializer) -> None:
    for payload in ({1, 2}, {"n": 2**64}, object()):
        with pytest.raises(LocalProtocolError, match="cannot be encoded as JSON"):
            serializer.encode(Message(TOPIC, "broadcast", payload))


# --- text frame validation ----------------------------------------------------------------

BAD_V1 = [
    ("not json", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"event":"e","payload":{},"ref":null}', "no 'topic' key"),
    ('{"topic":"t","payload":{},"ref":null}', "no 'event' key"),
    ('{"topic":"t","event":"e","ref":null}', "no 'payload' key"),
    ('{"topic":"t","event":"e","payload":{}}', "no 'ref' key"),
    ('{"topic":1,"event":"e","payload":{},"ref":null}', "topic must be a string"),
    ('{"topic":"t","event":null,"payload":{},"ref":null}', "event must be a string"),
    ('{"topic":"t","event":"e","payload":{},"ref":true}', "ref must be a string or null"),
    ('{"topic":"t","event":"e","payload":{},"ref":null,"join_ref":[]}', "join_ref must be"),
]


@pytest.mark.parametrize(("text", "match"), BAD_V1)
def test_bad_v1_frames(text: str, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        V1Serializer("server").decode(text)


BAD_V2 = [
    ("", "not valid JSON"),
    ('{"topic":"t"}', "array of at least 5 elements"),
    ('[null,null,"t","e"]', "array of at least 5 elements"),
    ('[null,null,1,"e",{}]', "topic must be a string"),
    ('[null,null,"t",2,{}]', "event must be a string"),
    ('[{},null,"t","e",{}]', "join_ref must be a string or null"),
    ('[null,1.5,"t","e",{}]', "ref must be a string or null"),
]


@pytest.mark.parametrize(("text", "match"), BAD_V2)
def test_bad_v2_frames(text: str, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        V2Serializer("client").decode(text)


def test_lenient_decoding() -> None:
    # numeric refs become strings; extra V2 elements are ignored (PROTOCOL.md §1.6)
    assert V2Serializer("server").decode('[1,2,"t","e",{},"extra"]') == Message(
        "t", "e", {}, ref="2", join_ref="1"
    )
    assert V1Serializer("server").decode('{"topic":"t","event":"e","payload":3,"ref":7}') == (
        Message("t", "e", 3, ref="7")
    )
    # empty refs in a kind 3 frame are no refs
    assert V2Serializer("server").decode(b"\x03\x00\x00\x01\x01\x00\x01tm1") == (
        user_broadcast("t", "m", 1, binary=True)
    )


def test_serializer_for() -> None:
    assert isinstance(serializer_for(None, "client"), V1Serializer)
    assert isinstance(serializer_for("", "server"), V1Serializer)
    assert isinstance(serializer_for("1.0.0", "server"), V1Serializer)
    assert isinstance(serializer_for("1.0.7", "server"), V1Serializer)
    v2 = serializer_for("2.0.0", "client")
    assert isinstance(v2, V2Serializer)
    assert v2.role == "client"
    assert v2.vsn == "2.0.0"
    for bad in ("3.0.0", "2", "1.1.0", "latest"):
        with pytest.raises(RemoteProtocolError, match="unsupported vsn"):
            serializer_for(bad, "client")


def test_role_is_checked() -> None:
    with pytest.raises(ValueError, match="role must be"):
        V2Serializer("peer")  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)
_ref = st.none() | _text


@st.composite
def text_messages(draw: st.DrawFn) -> Message:
    return Message(
        topic=draw(_text),
        event=draw(_text),
        payload=draw(_json),
        ref=draw(_ref),
        join_ref=draw(_ref),
    )


@NO_DEADLINE
@given(text_messages())
def test_v2_text_round_trip(msg: Message) -> None:
    for role in ("client", "server"):
        assert V2Serializer(_other(role)).decode(V2Serializer(role).encode(msg)) == msg


@NO_DEADLINE
@given(text_messages())
def test_v1_round_trip(msg: Message) -> None:
    assert V1Serializer("server").decode(V1Serializer("client").encode(msg)) == msg
    sent = V1Serializer("server").encode(msg)
    assert V1Serializer("client").decode(sent) == dataclasses.replace(msg, join_ref=None)


def _short(max_bytes: int) -> st.SearchStrategy[str]:
    return _text.filter(lambda s: len(s.encode()) <= max_bytes)


_binary_ref = st.none() | _short(255).filter(bool)


@st.composite
def binary_messages(draw: st.DrawFn, role: Role) -> Message:
    payload = draw(_json | st.binary(max_size=64))
    meta = draw(st.none() | st.dictionaries(_short(10), _short(10), max_size=3))
    with_refs = role == "client"
    return user_broadcast(
        draw(_short(255)),
        draw(_short(255)),
        payload,
        meta=meta,
        ref=draw(_binary_ref) if with_refs else None,
        join_ref=draw(_binary_ref) if with_refs else None,
        binary=True,
    )


@NO_DEADLINE
@given(binary_messages("client"))
def test_kind3_round_trip(msg: Message) -> None:
    data = V2Serializer("client").encode(msg)
    assert isinstance(data, bytes)
    assert data[0] == 3
    assert V2Serializer("server").decode(data) == msg


@NO_DEADLINE
@given(binary_messages("server"))
def test_kind4_round_trip(msg: Message) -> None:
    data = V2Serializer("server").encode(msg)
    assert isinstance(data, bytes)
    assert data[0] == 4
    assert V2Serializer("client").decode(data) == msg


_SERIALIZERS = [
    V1Serializer("client"),
    V1Serializer("server"),
    V2Serializer("client"),
    V2Serializer("server"),
]


def _decode_or_protocol_error(data: str | bytes) -> None:
    for serializer in _SERIALIZERS:
        try:
            msg = serializer.decode(data)
        except RemoteProtocolError:
            continue
        assert isinstance(msg, Message)


@NO_DEADLINE
@given(st.text())
def test_arbitrary_text_raises_only_remote_protocol_error(data: str) -> None:
    _decode_or_protocol_error(data)


@NO_DEADLINE
@given(st.binary())
def test_arbitrary_bytes_raise_only_remote_protocol_error(data: bytes) -> None:
    _decode_or_protocol_error(data)


@NO_DEADLINE
@given(st.sampled_from([3, 4]), st.binary(max_size=40))
def test_binary_like_bytes_raise_only_remote_protocol_error(kind: int, rest: bytes) -> None:
    _decode_or_protocol_error(bytes([kind]) + rest)


@NO_DEADLINE
@given(
    st.lists(_json, max_size=7)
    | st.dictionaries(st.sampled_from(["topic", "event", "payload", "ref", "join_ref"]), _json)
)
def test_json_shaped_frames_raise_only_remote_protocol_error(value: Any) -> None:
    _decode_or_protocol_error(orjson.dumps(value).decode())


@pytest.mark.parametrize("depth", [2_000, 1_000_000])
def test_deeply_nested_json_is_refused_not_a_crash(depth: int) -> None:
    # orjson alone overflows the C stack (a segfault) somewhere past 100k levels.
    nested = "[" * depth + "]" * depth
    frames: list[tuple[Serializer, str | bytes]] = [
        (V1Serializer("server"), f'{{"topic":"t","event":"e","payload":{nested},"ref":null}}'),
        (V2Serializer("server"), f'[null,null,"t","e",{nested}]'),
        (V2Serializer("client"), b"\x04\x01\x01\x00\x01tm" + nested.encode()),
        (
            V2Serializer("client"),
            b"\x04\x01\x01\x00\x01tm" + nested.replace("[", '{"a":[').encode(),
        ),
    ]
    for serializer, data in frames:
        with pytest.raises(RemoteProtocolError, match="nested too deeply"):
            serializer.decode(data)


def test_many_brackets_at_shallow_depth_still_decode() -> None:
    payload = [[n] for n in range(2_000)] + [{"k": "[[[["} for _ in range(300)]
    msg = Message(TOPIC, "presence_state", payload)
    assert V2Serializer("client").decode(V2Serializer("server").encode(msg)) == msg
