"""The live page's websocket: every event the worker relays, forwarded to the browser as JSON.

Each frame to the browser is the group message with ``type`` shortened to its kind
(``broadcast``, ``postgres_change``, ``presence_state``, ``presence_diff``, ``system``); see
:mod:`supa_realtime.events` for the fields. The socket is read-only: what the browser sends is
ignored.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from supa_realtime.conf import settings as realtime_settings
from supa_realtime.consumers import RealtimeEventsMixin
from supa_realtime.events import PREFIX

logger = logging.getLogger(__name__)


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class LiveConsumer(RealtimeEventsMixin, AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Joins the groups of every configured subscription and forwards what reaches them."""

    @property
    def realtime_topics(self) -> Sequence[str]:  # type: ignore[override]
        return [s.topic for s in realtime_settings.SUBSCRIPTIONS]

    async def connect(self) -> None:
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        logger.debug("< ignored browser frame on the read-only live socket")

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content, default=_json_default)

    async def forward(self, message: dict[str, Any]) -> None:
        """Send one relayed group message to the browser."""
        kind = str(message.get("type", "")).removeprefix(PREFIX)
        await self.send_json({**message, "type": kind})

    async def realtime_broadcast(self, message: dict[str, Any]) -> None:
        await self.forward(message)

    async def realtime_postgres_change(self, message: dict[str, Any]) -> None:
        await self.forward(message)

    async def realtime_presence_state(self, message: dict[str, Any]) -> None:
        await self.forward(message)

    async def realtime_presence_diff(self, message: dict[str, Any]) -> None:
        await self.forward(message)

    async def realtime_system(self, message: dict[str, Any]) -> None:
        await self.forward(message)
