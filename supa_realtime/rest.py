"""Direct REST transport: ``POST <URL>/realtime/v1/api/broadcast`` (PROTOCOL.md §5.5).

For deployments without a worker. Each call is one HTTP request carrying a batch of
messages; ``202 Accepted`` means the server took them (and fanned them out to every
subscriber of each topic: REST has no sender exclusion). Errors raise the
:class:`~supa_realtime.exceptions.BroadcastRejected` family with the server's message:
401 / 403 :class:`BroadcastUnauthorized`, 422 :class:`BroadcastInvalid`,
429 :class:`BroadcastRateLimited`. The server key travels in the ``apikey`` and
``Authorization`` headers only; it is never logged nor put in an error.

It uses the standard library's ``urllib`` (no new dependency); the async form runs the same
request in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import orjson

from .exceptions import (
    BroadcastError,
    BroadcastInvalid,
    BroadcastRateLimited,
    BroadcastRejected,
    BroadcastUnauthorized,
    ConfigurationError,
)
from .phoenix.message import subtopic

__all__ = ["RestMessage", "encode_body", "endpoint", "error_for", "send", "send_sync"]

logger = logging.getLogger(__name__)

API_PATH: Final = "/api/broadcast"
GATEWAY_PREFIX: Final = "/realtime/v1"
DEFAULT_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class RestMessage:
    """One message of a batch; ``payload`` is its JSON object, already encoded."""

    topic: str
    event: str
    payload: bytes
    private: bool = False


def endpoint(url: str) -> str:
    """The batch broadcast URL for a project URL or a Realtime URL.

    ``https://<ref>.supabase.co`` and ``wss://<ref>.supabase.co/realtime/v1`` both give
    ``https://<ref>.supabase.co/realtime/v1/api/broadcast``; ``ws://host/socket`` (the
    server itself, no gateway) gives ``http://host/api/broadcast``.
    """
    parts = urlsplit(url)
    scheme = {"http": "http", "https": "https", "ws": "http", "wss": "https"}.get(
        parts.scheme.lower()
    )
    if scheme is None or not parts.netloc:
        raise ConfigurationError(
            "SUPA_REALTIME['URL'] must look like https://<project>.supabase.co for REST broadcasts"
        )
    path = parts.path.rstrip("/").removesuffix("/websocket")
    if not path:
        path = GATEWAY_PREFIX
    elif path.endswith("/socket"):
        path = path.removesuffix("/socket")
    return urlunsplit((scheme, parts.netloc, path + API_PATH, "", ""))


def encode_body(messages: Sequence[RestMessage]) -> bytes:
    """The request body; payloads are inserted as encoded, not decoded and encoded again."""
    parts = []
    for m in messages:
        head = orjson.dumps({"topic": subtopic(m.topic), "event": m.event, "private": m.private})
        parts.append(head[:-1] + b',"payload":' + m.payload + b"}")
    return b'{"messages":[' + b",".join(parts) + b"]}"


def _server_message(body: Any, raw: bytes) -> str:
    if isinstance(body, dict):
        message = body.get("message") or body.get("error")
        if isinstance(message, str):
            return message
        errors = body.get("errors")
        if errors is not None:
            return _describe_errors(errors)
    return raw[:300].decode(errors="replace").strip()


def _describe_errors(errors: Any) -> str:
    """``{"messages": [{"event": ["can't be blank"]}]}`` → ``messages[0].event: can't be blank``."""
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            if value:
                found.append(f"{path}: {', '.join(value)}")
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(inner, f"{path}[{index}]")
        else:
            found.append(f"{path}: {value}")

    walk(errors, "")
    return "; ".join(found) if found else orjson.dumps(errors).decode()


def error_for(status: int, raw: bytes) -> BroadcastRejected:
    """The typed exception for an HTTP error answer."""
    try:
        body: Any = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    message = _server_message(body, raw)
    cls: type[BroadcastRejected]
    if status in (401, 403):
        cls = BroadcastUnauthorized
    elif status == 422:
        cls = BroadcastInvalid
    elif status == 429:
        cls = BroadcastRateLimited
    else:
        cls = BroadcastRejected
    return cls(status, message, body)


def send_sync(
    url: str, key: str, messages: Sequence[RestMessage], *, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """POST ``messages`` as one batch.

    Raises:
        BroadcastUnauthorized: HTTP 401 / 403.
        BroadcastInvalid: HTTP 422.
        BroadcastRateLimited: HTTP 429.
        BroadcastRejected: any other HTTP error.
        BroadcastError: the server could not be reached.
    """
    target = endpoint(url)
    request = urllib.request.Request(
        target,
        data=encode_body(messages),
        method="POST",
        headers={
            "apikey": key,
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
            response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        exc.close()
        error = error_for(exc.code, raw)
        logger.warning("POST %s -> %d: %s", target, exc.code, error.message)
        raise error from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BroadcastError(f"cannot reach {target}: {reason}") from None
    logger.debug("POST %s -> %d (%d messages)", target, status, len(messages))


async def send(
    url: str,
    key: str,
    messages: Sequence[RestMessage],
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - the HTTP request's timeout
) -> None:
    """:func:`send_sync` for async code (the request runs in a worker thread)."""
    await asyncio.to_thread(send_sync, url, key, messages, timeout=timeout)
