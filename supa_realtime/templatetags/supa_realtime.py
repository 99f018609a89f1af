"""``{% load supa_realtime %}``: the client, live presence lists and event bindings.

Thin wrappers over :mod:`supa_realtime.tags`; the markup is documented there.

``{% realtime_client "chat:*=join broadcast presence" ttl=600 nonce=... endpoint=... %}``
    The client's scripts and a token minted for ``request.user`` granting each
    ``pattern=actions`` argument. The CSP nonce is ``nonce`` or ``request.csp_nonce``.
``{% realtime_presence "room:lobby" key=user.username %}``
    The topic's current presence, rendered on the server and kept live in the page.
``{% realtime_events "orders" "INSERT UPDATE" table="public.orders" %}``
    Attributes binding the element they sit in to the topic's events.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from .. import tags

register = template.Library()


@register.simple_tag(takes_context=True)
def realtime_client(
    context: template.Context,
    *grants: str,
    ttl: float = tags.DEFAULT_TTL,
    nonce: str | None = None,
    endpoint: str = "",
    vsn: str = "2.0.0",
) -> SafeString:
    """The client's scripts and a signed, expiring token for the page's user."""
    request = context.get("request")
    user = getattr(request, "user", None) if request is not None else context.get("user")
    if nonce is None and request is not None:
        nonce = getattr(request, "csp_nonce", None)
    return tags.client_html(
        user,
        tags.parse_grants(grants),
        endpoint=endpoint,
        vsn=vsn,
        ttl=float(ttl),
        nonce=None if nonce is None else str(nonce),
    )


@register.simple_tag
def realtime_presence(topic: str, key: Any = None) -> SafeString:
    """The current presence of ``topic``, kept live by the companion script."""
    return tags.presence_html(
        topic, tags.presence_state(topic), key=None if key in (None, "") else str(key)
    )


@register.simple_tag
def realtime_events(topic: str, events: str = "*", table: str | None = None) -> SafeString:
    """Attributes binding an element to ``topic``'s events (re-emitted as DOM events)."""
    return tags.events_attrs(topic, events, table=table or None)
