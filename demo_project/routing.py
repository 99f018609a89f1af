"""Websocket routes of the demo (the browser gateway adds /realtime/v1/websocket)."""

from __future__ import annotations

from typing import Any

from django.urls import path

from demo_project.live.consumers import LiveConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
