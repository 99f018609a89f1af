"""Websocket routes of the demo (the browser gateway adds /realtime/v1/websocket)."""

from __future__ import annotations

from typing import Any

websocket_urlpatterns: list[Any] = []
