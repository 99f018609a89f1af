"""ASGI entry point of the demo: Django for HTTP, Channels for websockets.

Browsers' websockets get the origin check and their session's user; sockets without an
``Origin`` header are anonymous unless they present a gateway token (see
:func:`supa_realtime.gateway.routing.websocket_application`). With ``DEBUG`` the static
files (the JavaScript client) are served too, so plain ``daphne`` runs the demo.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
django_asgi_app: Any = get_asgi_application()

# Imported after Django is set up: these import models.
from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from demo_project.routing import websocket_urlpatterns  # noqa: E402
from supa_realtime.gateway.routing import websocket_application  # noqa: E402

http_app: Any = ASGIStaticFilesHandler(django_asgi_app) if settings.DEBUG else django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": websocket_application(websocket_urlpatterns),
    }
)
