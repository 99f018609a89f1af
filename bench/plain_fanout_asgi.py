"""The baseline of ``bench/fanout.py``: a plain Channels consumer per socket, in a group.

Each socket's ``AsyncJsonWebsocketConsumer`` joins the group ``bench`` and forwards every
``bench.event`` message with ``send_json`` — the usual way to fan out with Channels.
Served by daphne with the gateway test settings (their default channel capacity).
"""

from __future__ import annotations

from typing import Any

import django
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from django.urls import path  # noqa: E402

GROUP = "bench"


class PlainConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def bench_event(self, event: dict[str, Any]) -> None:
        await self.send_json(event["payload"])


application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": URLRouter([path("plain/", PlainConsumer.as_asgi())]),
    }
)
