"""The ASGI application the gateway tests serve with daphne."""

from __future__ import annotations

import django
from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

django.setup()

from supa_realtime.gateway.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter(
    {"http": get_asgi_application(), "websocket": websocket_application()}
)
