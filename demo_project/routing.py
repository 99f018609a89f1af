"""Websocket routes of the demo: the gateway at /realtime/v1/websocket and /ws/live/."""

from __future__ import annotations

from typing import Any

from django.urls import path

from demo_project.live.consumers import LiveConsumer
from supa_realtime.gateway.routing import realtime_urlpatterns

websocket_urlpatterns: list[Any] = [
    *realtime_urlpatterns(),
    path("ws/live/", LiveConsumer.as_asgi()),
]
