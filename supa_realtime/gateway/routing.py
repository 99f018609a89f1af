"""Websocket routes of the gateway.

In your ``asgi.py``::

    from supa_realtime.gateway.routing import websocket_application

    application = ProtocolTypeRouter({
        "http": get_asgi_application(),
        "websocket": websocket_application(),   # /realtime/v1/websocket
    })

or pass your own routes, e.g. ``websocket_application(realtime_urlpatterns("rt") + mine)``
(:func:`realtime_urlpatterns` mounts the gateway under another prefix).

Browsers always send ``Origin``: their sockets go through
``AllowedHostsOriginValidator(AuthMiddlewareStack(...))``, so a page on another site is
refused and a page of this site gets its session's user. Sockets without ``Origin`` (API
clients, mobile apps, the official Python client) skip both and are anonymous unless they
present a gateway token; a cookie alone never authenticates them.
"""

from __future__ import annotations

from typing import Any

from django.urls import re_path

__all__ = [
    "DEFAULT_PREFIX",
    "realtime_urlpatterns",
    "websocket_application",
    "websocket_urlpatterns",
]

DEFAULT_PREFIX = "realtime/v1"


def realtime_urlpatterns(prefix: str = DEFAULT_PREFIX) -> list[Any]:
    """Routes for ``/<prefix>/websocket`` (the official clients append ``/websocket``)."""
    from .consumer import RealtimeConsumer

    prefix = prefix.strip("/")
    path = rf"^{prefix}/websocket/?$" if prefix else r"^websocket/?$"
    return [re_path(path, RealtimeConsumer.as_asgi())]


websocket_urlpatterns: list[Any] = realtime_urlpatterns()
"""``/realtime/v1/websocket``, the path Supabase clients open."""


class _OriginRouter:
    """Sockets with an ``Origin`` header (browsers) go through the origin check and session
    authentication; sockets without one (API clients, mobile apps, the official Python
    client) skip both, so they are anonymous unless they present a gateway token. A page on
    another site cannot borrow a user's session: browsers always send ``Origin``."""

    def __init__(self, browser_app: Any, token_app: Any) -> None:
        self.browser_app = browser_app
        self.token_app = token_app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if any(name == b"origin" for name, _ in scope.get("headers", [])):
            await self.browser_app(scope, receive, send)
        else:
            await self.token_app(scope, receive, send)


def websocket_application(patterns: list[Any] | None = None) -> Any:
    """The websocket ASGI app: ``AllowedHostsOriginValidator(AuthMiddlewareStack(...))``
    around the routes for browsers, the bare routes for clients that send no ``Origin``."""
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator

    routes = websocket_urlpatterns if patterns is None else patterns
    return _OriginRouter(
        AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routes))), URLRouter(routes)
    )
