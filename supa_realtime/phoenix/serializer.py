"""V1 and V2 serializers: text and bytes in, :class:`Message` out, and back.

Theory of operation
-------------------
A socket negotiates its serializer once, with the ``vsn`` query parameter
(PROTOCOL.md §1.4). Both sides use the same classes; ``role`` says which side we are,
because the two directions differ on the wire:

* V1 (``1.0.0``): one JSON object per text frame. The server never writes ``join_ref``
  (Phoenix's V1 serializer strips it, §1.5), clients may.
* V2 (``2.0.0``): ``[join_ref, ref, topic, event, payload]`` arrays in text frames (§1.6),
  and user broadcasts as binary frames (§1.7): kind 3 from a client, kind 4 from the
  server. Kinds 0, 1 and 2 exist in the format but no Realtime code path produces them;
  decoding one is a :class:`RemoteProtocolError` that names the kind.

Every decoding failure raises :class:`~supa_realtime.exceptions.RemoteProtocolError` with
a truncated excerpt of the offending frame, and nothing else: callers log and drop it.
Encoding something the wire cannot carry raises
:class:`~supa_realtime.exceptions.LocalProtocolError`.

JSON goes through orjson: integers must fit in 64 bits, which every Realtime peer already
assumes (Erlang's JSON encoder and JavaScript both do).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import orjson

from ..exceptions import LocalProtocolError, RemoteProtocolError
from . import constants as c
from .message import Message

Role = Literal["client", "server"]

__all__ = ["Role", "Serializer", "V1Serializer", "V2Serializer", "excerpt", "serializer_for"]

_EXCERPT = 120
_NESTING_CHECK = 512  # fewer opening brackets than this cannot nest dangerously deep
_BYTES_TYPES = (bytes, bytearray, memoryview)


def excerpt(data: str | bytes, limit: int = _EXCERPT) -> str:
    """A short, printable excerpt of a frame for errors and logs."""
    text = repr(data[:limit])
    return text + (f"... ({len(data)} in all)" if len(data) > limit else "")


def dumps(value: Any) -> str:
    """Compact JSON text; raises :class:`LocalProtocolError` for what JSON cannot carry."""
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise LocalProtocolError(f"payload cannot be encoded as JSON: {exc}") from None


def _may_nest_deeply(data: str | bytes) -> bool:
    if len(data) <= 2 * _NESTING_CHECK:  # too short to hold that many pairs of brackets
        return False
    if isinstance(data, str):
        return data.count("[") + data.count("{") > _NESTING_CHECK
    return data.count(b"[") + data.count(b"{") > _NESTING_CHECK


def _loads(data: str | bytes, what: str) -> Any:
    # orjson recurses on the C stack without a limit: a frame of a few hundred thousand
    # nested brackets crashes the process. The standard library's decoder counts its depth
    # and raises RecursionError instead, so it vets the rare frames that could be that deep.
    if _may_nest_deeply(data):
        try:
            json.loads(data)
        except RecursionError:
            raise RemoteProtocolError(f"{what} is nested too deeply: {excerpt(data)}") from None
        except ValueError:
            pass  # not JSON at all: orjson says why below
    try:
        return orjson.loads(data)
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
        raise RemoteProtocolError(f"{what} is not valid JSON ({exc}): {excerpt(data)}") from None


def _optional_ref(value: Any, name: str, frame: str | bytes) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # lenient: some clients send numeric refs
    raise RemoteProtocolError(f"{name} must be a string or null: {excerpt(frame)}")


def _required_str(value: Any, name: str, frame: str | bytes) -> str:
    if not isinstance(value, str):
        raise RemoteProtocolError(f"{name} must be a string: {excerpt(frame)}")
    return value


class Serializer:
    """Base class. ``encode`` gives the websocket frame (``str`` = text, ``bytes`` = binary)."""

    vsn: str = ""

    def __init__(self, role: Role) -> None:
        if role not in ("client", "server"):
            raise ValueError(f"role must be 'client' or 'server', not {role!r}")
        self.role: Role = role

    def encode(self, message: Message) -> str | bytes:
        raise NotImplementedError  # pragma: no cover - abstract

    def decode(self, data: str | bytes) -> Message:
        raise NotImplementedError  # pragma: no cover - abstract


class V1Serializer(Serializer):
    """``1.0.0``: JSON objects in text frames."""

    vsn = c.VSN_1

    def encode(self, message: Message) -> str:
        payload = message.payload
        if (
            message.binary
            and isinstance(payload, dict)
            and isinstance(payload.get("payload"), _BYTES_TYPES)
        ):
            raise LocalProtocolError(
                f"a binary broadcast payload cannot be sent with vsn {self.vsn}; use {c.VSN_2}"
            )
        frame: dict[str, Any] = {
            "topic": message.topic,
            "event": message.event,
            "payload": payload,
            "ref": message.ref,
        }
        if self.role == "client":
            frame["join_ref"] = message.join_ref
        return dumps(frame)

    def decode(self, data: str | bytes) -> Message:
        if not isinstance(data, str):
            raise RemoteProtocolError(
                f"binary frame on a vsn {self.vsn} socket (binary needs {c.VSN_2}): {excerpt(data)}"
            )
        obj = _loads(data, "V1 frame")
        if not isinstance(obj, dict):
            raise RemoteProtocolError(f"V1 frame must be a JSON object: {excerpt(data)}")
        for key in ("topic", "event", "payload", "ref"):
            if key not in obj:
                raise RemoteProtocolError(f"V1 frame has no {key!r} key: {excerpt(data)}")
        return Message(
            topic=_required_str(obj["topic"], "topic", data),
            event=_required_str(obj["event"], "event", data),
            payload=obj["payload"],
            ref=_optional_ref(obj["ref"], "ref", data),
            join_ref=_optional_ref(obj.get("join_ref"), "join_ref", data),
        )


class V2Serializer(Serializer):
    """``2.0.0``: JSON arrays in text frames, user broadcasts in binary frames."""

    vsn = c.VSN_2

    def encode(self, message: Message) -> str | bytes:
        if message.binary and message.event == c.BROADCAST:
            binary = self._encode_user_broadcast(message)
            if binary is not None:
                return binary
        return dumps([message.join_ref, message.ref, message.topic, message.event, message.payload])

    def decode(self, data: str | bytes) -> Message:
        if isinstance(data, str):
            return self._decode_text(data)
        return decode_binary(bytes(data))

    def _decode_text(self, data: str) -> Message:
        arr = _loads(data, "V2 frame")
        if not isinstance(arr, list) or len(arr) < 5:
            raise RemoteProtocolError(
                f"V2 text frame must be an array of at least 5 elements: {excerpt(data)}"
            )
        return Message(
            join_ref=_optional_ref(arr[0], "join_ref", data),
            ref=_optional_ref(arr[1], "ref", data),
            topic=_required_str(arr[2], "topic", data),
            event=_required_str(arr[3], "event", data),
            payload=arr[4],
        )

    def _encode_user_broadcast(self, message: Message) -> bytes | None:
        """Kind 3 (client) or kind 4 (server); ``None`` to fall back to a text frame.

        Only ``event``, ``payload`` and ``meta`` of the broadcast body travel, as in
        realtime-js (its allowed-metadata list is empty): the receiver re-adds ``type``.
        A JSON payload whose header fields do not fit the one-byte lengths falls back to a
        text frame; a raw ``bytes`` payload has no text form and raises instead.
        """
        body = message.payload
        if not isinstance(body, dict) or not isinstance(body.get("event"), str):
            raise LocalProtocolError(
                "a binary broadcast needs a payload object with a string 'event'"
            )
        inner = body.get("payload")
        is_bytes = isinstance(inner, _BYTES_TYPES)
        meta = body.get("meta")
        try:
            if self.role == "client":
                return encode_user_broadcast_push(
                    message.join_ref, message.ref, message.topic, body["event"], inner, meta
                )
            return encode_user_broadcast(message.topic, body["event"], inner, meta)
        except _FieldTooLong:
            if is_bytes:
                raise LocalProtocolError(
                    "a binary broadcast's topic, event, refs and metadata must each fit in "
                    "255 bytes"
                ) from None
            return None


class _FieldTooLong(LocalProtocolError):
    pass


def _field(value: str | None, name: str) -> bytes:
    raw = (value or "").encode()
    if len(raw) > 255:
        raise _FieldTooLong(f"{name} is {len(raw)} bytes; a binary frame field holds at most 255")
    return raw


def _payload_bytes(payload: Any) -> tuple[int, bytes]:
    if isinstance(payload, _BYTES_TYPES):
        return c.ENCODING_BINARY, bytes(payload)
    return c.ENCODING_JSON, dumps(payload).encode()


def _meta_bytes(meta: Any) -> bytes:
    if meta is None:
        return b""
    if not isinstance(meta, dict):
        raise LocalProtocolError(f"broadcast metadata must be an object, not {type(meta).__name__}")
    return _field(dumps(meta), "metadata")


def encode_user_broadcast_push(
    join_ref: str | None,
    ref: str | None,
    topic: str,
    event: str,
    payload: Any,
    meta: dict[str, Any] | None = None,
) -> bytes:
    """Binary kind 3 (client → server), PROTOCOL.md §1.7."""
    fields = [
        _field(join_ref, "join_ref"),
        _field(ref, "ref"),
        _field(topic, "topic"),
        _field(event, "event"),
        _meta_bytes(meta),
    ]
    encoding, body = _payload_bytes(payload)
    header = bytes([c.KIND_USER_BROADCAST_PUSH, *(len(f) for f in fields), encoding])
    return b"".join([header, *fields, body])


def encode_user_broadcast(
    topic: str, event: str, payload: Any, meta: dict[str, Any] | None = None
) -> bytes:
    """Binary kind 4 (server → client), PROTOCOL.md §1.7."""
    fields = [_field(topic, "topic"), _field(event, "event"), _meta_bytes(meta)]
    encoding, body = _payload_bytes(payload)
    header = bytes([c.KIND_USER_BROADCAST, *(len(f) for f in fields), encoding])
    return b"".join([header, *fields, body])


def decode_binary(data: bytes) -> Message:
    """Decode a binary kind 3 or 4 frame into a ``broadcast`` :class:`Message`."""
    if not data:
        raise RemoteProtocolError("empty binary frame")
    kind = data[0]
    if kind == c.KIND_USER_BROADCAST_PUSH:
        header_len, n_fields = 7, 5
    elif kind == c.KIND_USER_BROADCAST:
        header_len, n_fields = 5, 3
    else:
        name = c.BINARY_KIND_NAMES.get(kind, "unknown")
        raise RemoteProtocolError(
            f"binary frame kind {kind} ({name}) is not supported; Realtime only uses kinds 3 "
            f"(user broadcast push) and 4 (user broadcast): {excerpt(data)}"
        )
    if len(data) < header_len:
        raise RemoteProtocolError(f"binary frame kind {kind} has a short header: {excerpt(data)}")
    lengths = data[1 : 1 + n_fields]
    encoding = data[header_len - 1]
    if encoding not in (c.ENCODING_BINARY, c.ENCODING_JSON):
        raise RemoteProtocolError(f"unknown binary payload encoding {encoding}: {excerpt(data)}")
    pos = header_len
    parts: list[bytes] = []
    for length in lengths:
        end = pos + length
        if end > len(data):
            raise RemoteProtocolError(f"binary frame is truncated: {excerpt(data)}")
        parts.append(data[pos:end])
        pos = end
    try:
        texts = [p.decode() for p in parts]
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"binary frame header is not UTF-8: {excerpt(data)}") from None
    raw = data[pos:]
    payload: Any = raw if encoding == c.ENCODING_BINARY else _loads(raw, "binary JSON payload")
    meta_text = texts[-1]
    meta: Any = _loads(meta_text, "binary frame metadata") if meta_text else None
    if meta is not None and not isinstance(meta, dict):
        raise RemoteProtocolError(f"binary frame metadata must be an object: {excerpt(data)}")
    body: dict[str, Any] = {"type": "broadcast", "event": texts[-2], "payload": payload}
    if meta is not None:
        body["meta"] = meta
    if kind == c.KIND_USER_BROADCAST_PUSH:
        join_ref, ref, topic = texts[0] or None, texts[1] or None, texts[2]
    else:
        join_ref, ref, topic = None, None, texts[0]
    return Message(topic, c.BROADCAST, body, ref=ref, join_ref=join_ref, binary=True)


def serializer_for(vsn: str | None, role: Role) -> Serializer:
    """The serializer for a ``vsn`` query value: missing is 1.0.0, any 1.0.x / 2.0.x is accepted.

    Raises :class:`RemoteProtocolError` for anything else (the server answers HTTP 403).
    """
    if vsn is None or vsn == "" or vsn.startswith("1.0."):
        return V1Serializer(role)
    if vsn.startswith("2.0."):
        return V2Serializer(role)
    raise RemoteProtocolError(f"unsupported vsn {vsn!r}; supported: {', '.join(c.VSNS)}")
