"""The ASGI application of the local Realtime server: websocket and REST routing.

Routes (PROTOCOL.md §1.1, §5.5, §5.6), each with and without the gateway's
``/realtime/v1`` prefix:

* websocket ``/socket/websocket`` and ``/realtime/v1/websocket``;
* ``POST /api/broadcast`` (batch) and ``POST /api/broadcast/<topic>/events/<event>``
  (single message);
* anything else: 404 ``{"errors": {"detail": "Not Found"}}``.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from .connection import Connection, Receive, Scope, Send
from .context import ServerContext
from .jwt import TokenRejection, check_token
from .limits import REST_BATCH_TOO_BIG, payload_size

__all__ = ["RealtimeApp"]

logger = logging.getLogger(__name__)

WEBSOCKET_PATHS = frozenset(
    {"/socket/websocket", "/realtime/v1/websocket", "/socket/websocket/", "/realtime/v1/websocket/"}
)
_PREFIX = "/realtime/v1"
_SINGLE_RE = re.compile(r"^/api/broadcast/([^/]+)/events/([^/]+)/?$")
_CORS = [(b"access-control-allow-origin", b"*")]
_UNSUPPORTED_MEDIA = "Unsupported Media Type. Use application/json or application/octet-stream"
_BLANK = "can't be blank"
_INVALID = "is invalid"


class RealtimeApp:
    """ASGI 3 application serving one :class:`ServerContext`."""

    def __init__(self, context: ServerContext) -> None:
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            if scope["path"] in WEBSOCKET_PATHS:
                await Connection(self.context, scope, receive, send).run()
            else:
                await receive()
                await send(
                    {
                        "type": "websocket.http.response.start",
                        "status": 404,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send(
                    {
                        "type": "websocket.http.response.body",
                        "body": b'{"errors":{"detail":"Not Found"}}',
                    }
                )
        elif kind == "http":
            await self._http(scope, receive, send)

    # HTTP -------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith(_PREFIX + "/"):
            path = path[len(_PREFIX) :]
        method = scope["method"]
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw_path = (scope.get("raw_path") or path.encode()).decode("latin-1").split("?")[0]
        single = _SINGLE_RE.match(raw_path.removeprefix(_PREFIX))
        if method == "OPTIONS" and (path.rstrip("/") == "/api/broadcast" or single):
            await _respond(
                send,
                204,
                None,
                extra=[
                    (b"access-control-allow-methods", b"POST, OPTIONS"),
                    (
                        b"access-control-allow-headers",
                        b"authorization, apikey, content-type, x-client-info",
                    ),
                ],
            )
            return
        if method == "POST" and path.rstrip("/") == "/api/broadcast":
            status, answer = self._batch(headers, body)
        elif method == "POST" and single is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            private = query.get("private", ["false"])[0].lower() == "true"
            status, answer = self._single(
                headers, body, unquote(single.group(1)), unquote(single.group(2)), private
            )
        else:
            status, answer = 404, {"errors": {"detail": "Not Found"}}
        logger.info("%s %s -> %d", method, scope["path"], status)
        await _respond(send, status, answer)

    def _authorized(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else headers.get("apikey")
        if not token:
            return False
        return not isinstance(check_token(token, self.context.options.jwt_secret), TokenRejection)

    def _batch(self, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if not self._authorized(headers):
            return 401, {"message": "Unauthorized"}
        try:
            data = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            return 400, {"errors": {"detail": "Bad Request"}}
        messages = data.get("messages") if isinstance(data, dict) else None
        if messages is None:
            return 422, {"errors": {"messages": [_BLANK]}}
        if not isinstance(messages, list):
            return 422, {"errors": {"messages": [_INVALID]}}
        errors = [_message_errors(m) for m in messages]
        if any(errors):
            return 422, {"errors": {"messages": errors}}
        limits = self.context.options.limits
        if len(messages) > limits.max_events_per_second:
            return 429, {"message": REST_BATCH_TOO_BIG}
        if any(payload_size(m["payload"]) > limits.max_payload_bytes for m in messages):
            return 422, {"errors": {"messages": ["Payload size exceeds tenant limit"]}}
        hub = self.context.hub
        for m in messages:
            meta = {"id": m["id"]} if m.get("id") is not None else None
            hub.broadcast(
                (m.get("private") is True, m["topic"]), m["event"], m["payload"], meta=meta
            )
        return 202, None

    def _single(
        self, headers: dict[str, str], body: bytes, topic: str, event: str, private: bool
    ) -> tuple[int, Any]:
        if not self._authorized(headers):
            return 401, {"message": "Unauthorized"}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        payload: Any
        if content_type == "application/octet-stream":
            payload = body
        elif content_type in ("application/json", ""):
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError:
                if content_type:
                    return 422, {"message": "Invalid JSON payload"}
                payload = body
        else:
            return 415, {"error": _UNSUPPORTED_MEDIA}
        if payload_size(payload) > self.context.options.limits.max_payload_bytes:
            return 422, {"message": "Payload size exceeds tenant limit"}
        self.context.hub.broadcast((private, topic), event, payload, binary=True)
        return 202, None


def _message_errors(message: Any) -> dict[str, list[str]]:
    if not isinstance(message, dict):
        return {"topic": [_BLANK], "event": [_BLANK], "payload": [_BLANK]}
    errors: dict[str, list[str]] = {}
    for name in ("topic", "event"):
        value = message.get(name)
        if value is None or value == "":
            errors[name] = [_BLANK]
        elif not isinstance(value, str):
            errors[name] = [_INVALID]
    payload = message.get("payload")
    if payload is None:
        errors["payload"] = [_BLANK]
    elif not isinstance(payload, dict):
        errors["payload"] = [_INVALID]
    private = message.get("private")
    if private is not None and not isinstance(private, bool):
        errors["private"] = [_INVALID]
    ident = message.get("id")
    if ident is not None:
        try:
            uuid.UUID(str(ident))
        except ValueError:
            errors["id"] = [_INVALID]
    return errors


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        event = await receive()
        if event["type"] != "http.request":
            break
        chunks.append(event.get("body", b""))
        if not event.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(
    send: Send, status: int, answer: Any, *, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = b"" if answer is None else orjson.dumps(answer)
    headers = [*_CORS, *(extra or [])]
    if answer is not None:
        headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
