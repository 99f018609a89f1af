"""HTML of the template tags in :mod:`supa_realtime.templatetags.supa_realtime`.

Each tag is a thin wrapper over one function here, so the HTML can be built (and tested)
without a template. All of it is built with :func:`~django.utils.html.format_html`, so
every value that comes from users (presence metas, topic names) is escaped.

Markup
------
:func:`client_html`::

    <script id="supa-realtime-config" type="application/json">{"endpoint": ..., "token": ...,
      "vsn": ...}</script>
    <script src="/static/supa_realtime/supa-realtime.js" nonce="..."></script>
    <script src="/static/supa_realtime/supa-realtime-tags.js" nonce="..."></script>

:func:`presence_html`::

    <ul class="realtime-presence" data-realtime-presence="room:lobby" data-realtime-key="alice">
      <li class="realtime-presence-member" data-key="alice" data-count="1"
          data-meta-typing="false">Alice</li>
    </ul>

A member's label is its latest meta's ``name`` (else its key); every scalar field of that
meta whose name is lowercase letters, digits and ``_`` becomes ``data-meta-<field>``, so CSS
can style e.g. ``[data-meta-typing="true"]``.

:func:`events_attrs` renders attributes for the element it sits in::

    <div {% realtime_events "orders" "INSERT UPDATE" %}>

The companion script ``supa-realtime-tags.js`` keeps presence lists live and re-emits a bound
topic's events as bubbling DOM ``CustomEvent`` s on the bound element: ``realtime:broadcast``
(``detail``: ``{topic, event, payload}``) and ``realtime:postgres_changes`` (``detail``:
``{topic, event, change}``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join, json_script
from django.utils.safestring import SafeString

from .gateway.tokens import DEFAULT_TTL, mint_token

__all__ = [
    "CLIENT_SCRIPT",
    "CONFIG_ELEMENT_ID",
    "DEFAULT_TTL",
    "TAGS_SCRIPT",
    "client_html",
    "events_attrs",
    "parse_grants",
    "presence_html",
    "presence_state",
]

logger = logging.getLogger(__name__)

CLIENT_SCRIPT: Final = "supa_realtime/supa-realtime.js"
TAGS_SCRIPT: Final = "supa_realtime/supa-realtime-tags.js"
CONFIG_ELEMENT_ID: Final = "supa-realtime-config"

_META_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_HIDDEN_FIELDS: Final = frozenset({"phx_ref", "phx_ref_prev", "presence_ref"})


def parse_grants(grants: Iterable[str]) -> dict[str, list[str]]:
    """``["chat:*=join broadcast presence"]`` → ``{"chat:*": ["join", "broadcast", ...]}``.

    Raises:
        ValueError: a grant without ``=`` or without actions.
    """
    topics: dict[str, list[str]] = {}
    for grant in grants:
        pattern, sep, actions = grant.partition("=")
        names = actions.replace(",", " ").split()
        if not sep or not pattern.strip() or not names:
            raise ValueError(f"a grant is 'pattern=action action', got {grant!r}")
        topics.setdefault(pattern.strip(), []).extend(names)
    return topics


def _script(src: str, nonce: str | None) -> SafeString:
    if nonce:
        return format_html('<script src="{}" nonce="{}"></script>', src, nonce)
    return format_html('<script src="{}"></script>', src)


def client_html(
    user: Any,
    topics: Mapping[str, Iterable[str]],
    *,
    endpoint: str = "",
    vsn: str = "2.0.0",
    ttl: float = DEFAULT_TTL,
    nonce: str | None = None,
) -> SafeString:
    """The client's scripts and its configuration, with a token minted for ``user``.

    Args:
        user: the page's user (anonymous or ``None``: an ``anon`` token).
        topics: topic pattern → actions the token grants (see
            :func:`supa_realtime.gateway.tokens.mint_token`).
        endpoint: the Realtime URL without ``/websocket``; empty: this site's gateway at
            ``/realtime/v1``.
        vsn: the protocol version the client speaks.
        ttl: seconds the token is valid.
        nonce: the CSP nonce put on the script elements.

    Returns:
        The HTML: a JSON configuration element and two script elements.
    """
    config = {
        "endpoint": endpoint,
        "token": mint_token(user, topics=topics, ttl=ttl),
        "vsn": vsn,
    }
    return format_html(
        "{}\n{}\n{}",
        json_script(config, CONFIG_ELEMENT_ID),
        _script(static(CLIENT_SCRIPT), nonce),
        _script(static(TAGS_SCRIPT), nonce),
    )


def _meta_attrs(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    attrs: list[tuple[str, str]] = []
    for name, value in sorted(meta.items()):
        if name in _HIDDEN_FIELDS or not _META_FIELD.match(name):
            continue
        if isinstance(value, bool):
            attrs.append((name, "true" if value else "false"))
        elif isinstance(value, str | int | float):
            attrs.append((name, str(value)))
    return attrs


def presence_html(topic: str, state: Mapping[str, Any], *, key: str | None = None) -> SafeString:
    """The presence list of ``topic`` from a ``presence_state`` payload.

    Args:
        topic: the subtopic (``room:lobby``) the companion script joins to keep it live.
        state: ``{key: {"metas": [meta, ...]}}``, as :meth:`PresenceStore.state` returns.
        key: this page's presence key (the script joins with it), if it tracks.

    Returns:
        ``<ul class="realtime-presence" ...>`` with one ``<li>`` per key, sorted by key.
    """
    items = []
    for member in sorted(state):
        metas = state[member].get("metas") or [{}]
        latest = metas[-1] if isinstance(metas[-1], Mapping) else {}
        label = latest.get("name")
        data = format_html_join(
            "", ' data-meta-{}="{}"', ((n.replace("_", "-"), v) for n, v in _meta_attrs(latest))
        )
        items.append(
            format_html(
                '<li class="realtime-presence-member" data-key="{}" data-count="{}"{}>{}</li>',
                member,
                len(metas),
                data,
                label if isinstance(label, str) and label else member,
            )
        )
    key_attr = format_html(' data-realtime-key="{}"', key) if key else ""
    return format_html(
        '<ul class="realtime-presence" data-realtime-presence="{}"{}>{}</ul>',
        topic,
        key_attr,
        SafeString("".join(items)),
    )


def events_attrs(topic: str, events: str = "*", *, table: str | None = None) -> SafeString:
    """Attributes that bind an element to ``topic``'s events.

    Args:
        topic: the subtopic.
        events: event names, space separated (``"INSERT UPDATE"``), or ``"*"``. Broadcasts
            with these names are re-emitted as ``realtime:broadcast``.
        table: ``"schema.table"``: also subscribe to that table's changes of these events
            (``INSERT``, ``UPDATE``, ``DELETE`` or ``*``), re-emitted as
            ``realtime:postgres_changes``.

    Returns:
        ``data-realtime-events="..." data-realtime-names="..."`` (plus
        ``data-realtime-table``).
    """
    names = " ".join(events.split()) or "*"
    table_attr = format_html(' data-realtime-table="{}"', table) if table else ""
    return format_html(
        'data-realtime-events="{}" data-realtime-names="{}"{}', topic, names, table_attr
    )


async def _fetch_state(topic: str) -> dict[str, Any]:
    import redis.asyncio

    from .conf import settings as realtime_settings
    from .presence import PresenceStore

    client = redis.asyncio.Redis.from_url(realtime_settings.REDIS_URL)
    try:
        store = PresenceStore(client, None, prefix=realtime_settings.REDIS_PREFIX)
        return await store.state(topic)
    finally:
        await client.aclose()


def presence_state(topic: str) -> dict[str, Any]:
    """The current presence of ``topic`` (a subtopic), read from Redis (synchronous).

    When Redis cannot be reached the state is empty (logged as a warning): the page still
    renders, and the companion script fills the list once it joins.
    """
    from asgiref.sync import async_to_sync
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    try:
        state: dict[str, Any] = async_to_sync(_fetch_state)(f"realtime:{topic}")
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        logger.warning("presence of %r not rendered, Redis unavailable: %s", topic, exc)
        return {}
    # Metas went through JSON already; a round trip keeps the type honest.
    return dict(orjson.loads(orjson.dumps(state)))
