"""Django system checks for ``SUPA_REALTIME`` and the channel layer it relies on.

Ids are stable; a new check takes a new number and an id is never reused:

=====================  ====================================================================
``supa_realtime.E001``  no Supabase URL (``SUPA_REALTIME["URL"]`` / ``SUPABASE_URL``)
``supa_realtime.E002``  no server key (``SUPA_REALTIME["KEY"]`` / ``SUPABASE_KEY``)
``supa_realtime.E003``  no channel layer under the configured alias
``supa_realtime.E004``  a malformed ``SUBSCRIPTIONS`` entry (names the entry and the key)
``supa_realtime.E005``  a subscribed topic that maps to no usable group
``supa_realtime.E006``  two subscriptions for the same topic
``supa_realtime.E007``  any other malformed ``SUPA_REALTIME`` value (names it)
``supa_realtime.W001``  an in-memory channel layer, which cannot reach the worker process
``supa_realtime.W002``  an unknown key in ``SUPA_REALTIME`` (usually a typo)
``supa_realtime.E008``  ``GATEWAY["AUTHORIZE"]`` cannot be imported or is not callable
``supa_realtime.W003``  ``GATEWAY["TABLES"]`` sends a table's rows to anonymous visitors
``supa_realtime.W004``  a ``channels_redis`` host whose read timeout cuts idle consumers off
=====================  ====================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from django.apps import AppConfig
from django.conf import settings as django_settings
from django.core.checks import CheckMessage, Error, Warning

from supa_realtime.conf import DEFAULTS, ConfigurationError, Subscription
from supa_realtime.conf import settings as realtime_settings
from supa_realtime.groups import GROUP_NAME_MAX_LENGTH, group_for

__all__ = [
    "CHECK_IDS",
    "check_channel_layer",
    "check_gateway",
    "check_settings",
    "check_subscriptions",
]

CHECK_IDS: Final = (
    "supa_realtime.E001",
    "supa_realtime.E002",
    "supa_realtime.E003",
    "supa_realtime.E004",
    "supa_realtime.E005",
    "supa_realtime.E006",
    "supa_realtime.E007",
    "supa_realtime.W001",
    "supa_realtime.W002",
    "supa_realtime.E008",
    "supa_realtime.W003",
    "supa_realtime.W004",
)

IN_MEMORY_BACKENDS: Final = frozenset({"channels.layers.InMemoryChannelLayer"})
_LEGAL_GROUP_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
)

# Properties of the settings object checked by E007, in order. URL and KEY are E001/E002.
_SIMPLE_SETTINGS: Final = (
    "REDIS_URL",
    "CHANNEL_LAYER",
    "HEARTBEAT_INTERVAL",
    "RECONNECT",
    "VSN",
    "PUSH_TIMEOUT",
    "DEVSERVER",
    "REDIS_PREFIX",
    "BROADCAST",
    "WORKER",
    "GATEWAY",
)


def _malformed(exc: ConfigurationError) -> Error:
    return Error(str(exc), hint="Fix the value named above.", id="supa_realtime.E007")


def _read(getter: Callable[[], Any], errors: list[CheckMessage]) -> Any:
    try:
        return getter()
    except ConfigurationError as exc:
        errors.append(_malformed(exc))
        return None


def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E001, E002, E007, W002: the connection settings and every simple value."""
    errors: list[CheckMessage] = []
    try:
        realtime_settings.unknown_keys  # noqa: B018 - reading it validates the dict itself
    except ConfigurationError as exc:
        return [_malformed(exc)]
    url = _read(lambda: realtime_settings.URL, errors)
    if url is None and not errors:
        errors.append(
            Error(
                "No Supabase Realtime URL is configured.",
                hint=(
                    'Set SUPA_REALTIME["URL"] or the SUPABASE_URL environment variable to your '
                    "project URL, e.g. https://<project-ref>.supabase.co."
                ),
                id="supa_realtime.E001",
            )
        )
    before = len(errors)
    key = _read(lambda: realtime_settings.KEY, errors)
    if key is None and len(errors) == before:
        errors.append(
            Error(
                "No Supabase server key is configured.",
                hint=(
                    'Set SUPA_REALTIME["KEY"] or the SUPABASE_KEY environment variable to the '
                    "project's service_role (secret) key. It stays on the server."
                ),
                id="supa_realtime.E002",
            )
        )
    for name in _SIMPLE_SETTINGS:
        try:
            getattr(realtime_settings, name)
        except ConfigurationError as exc:
            errors.append(_malformed(exc))
    for key_name in realtime_settings.unknown_keys:
        errors.append(
            Warning(
                f"SUPA_REALTIME has an unknown key {key_name!r}; it has no effect.",
                hint=f"Remove it or use one of: {', '.join(DEFAULTS)}.",
                id="supa_realtime.W002",
            )
        )
    return errors


def check_channel_layer(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E003, W001: the channel layer that relayed events go through."""
    try:
        alias = realtime_settings.CHANNEL_LAYER
    except ConfigurationError:
        return []  # reported as E007 by check_settings
    layers = getattr(django_settings, "CHANNEL_LAYERS", None)
    if not isinstance(layers, dict) or not isinstance(layers.get(alias), dict):
        return [
            Error(
                f"No channel layer is configured under the alias {alias!r}.",
                hint=(
                    f'Add CHANNEL_LAYERS["{alias}"] with BACKEND '
                    '"channels_redis.core.RedisChannelLayer" (or set '
                    'SUPA_REALTIME["CHANNEL_LAYER"] to an alias that exists).'
                ),
                id="supa_realtime.E003",
            )
        ]
    messages = _short_read_timeouts(layers)
    backend = layers[alias].get("BACKEND")
    if backend in IN_MEMORY_BACKENDS:
        return [
            Warning(
                f"CHANNEL_LAYERS[{alias!r}] is an in-memory layer; messages cannot cross "
                "processes, so events relayed by `manage.py realtime_worker` never reach "
                "your ASGI server.",
                hint=(
                    f'Use "channels_redis.core.RedisChannelLayer" (or RedisPubSubChannelLayer) '
                    f'for CHANNEL_LAYERS["{alias}"]["BACKEND"].'
                ),
                id="supa_realtime.W001",
            )
        ]
    return messages


CORE_REDIS_BACKEND: Final = "channels_redis.core.RedisChannelLayer"


def _default_read_timeout() -> float | None:
    """redis-py's default ``socket_timeout``: ``None`` before 8.0, 5 seconds since."""
    import inspect

    from redis.asyncio.connection import AbstractConnection

    default = inspect.signature(AbstractConnection.__init__).parameters["socket_timeout"].default
    return default if isinstance(default, int | float) else None


def _short_read_timeouts(layers: dict[str, Any]) -> list[CheckMessage]:
    """W004: ``RedisChannelLayer.receive`` blocks in Redis for ``brpop_timeout`` (5 s); a
    read timeout that is not longer makes redis-py give up first, and an idle consumer is
    closed with a ``TimeoutError``. redis-py 8 made 5 s its default."""
    from channels_redis.core import RedisChannelLayer

    blocking = RedisChannelLayer.brpop_timeout
    default = _default_read_timeout()
    messages: list[CheckMessage] = []
    for alias, layer in layers.items():
        if not isinstance(layer, dict) or layer.get("BACKEND") != CORE_REDIS_BACKEND:
            continue
        hosts = (layer.get("CONFIG") or {}).get("hosts") or ["redis://localhost:6379"]
        for number, host in enumerate(hosts):
            timeout = host.get("socket_timeout", default) if isinstance(host, dict) else default
            if timeout is None or timeout > blocking:
                continue
            messages.append(
                Warning(
                    f'CHANNEL_LAYERS["{alias}"]["CONFIG"]["hosts"][{number}] reads from Redis '
                    f"with a {timeout:g} s timeout, no longer than the {blocking} s that "
                    "channels_redis blocks in each receive: idle websocket consumers will be "
                    "closed with a TimeoutError.",
                    hint=(
                        'Give the host as {"address": "redis://...", "socket_timeout": 30} '
                        f"(anything above {blocking}, or None)."
                    ),
                    id="supa_realtime.W004",
                )
            )
    return messages


def _group_problem(subscription: Subscription) -> str | None:
    if subscription.full_topic == "realtime:":
        return "it is empty (Supabase refuses it with TopicNameRequired)"
    group = group_for(subscription.topic)
    if len(group) >= GROUP_NAME_MAX_LENGTH or not set(group) <= _LEGAL_GROUP_CHARS:
        return f"its group name {group!r} is not legal for Channels"
    return None


def check_subscriptions(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E004, E005, E006: the topics the worker joins."""
    try:
        subscriptions = realtime_settings.SUBSCRIPTIONS
    except ConfigurationError as exc:
        return [
            Error(
                str(exc),
                hint=(
                    'Each SUPA_REALTIME["SUBSCRIPTIONS"] entry is a dict with "topic" (str) and '
                    'optionally "broadcast" ("*" or a list of events), "presence" (bool), '
                    '"private" (bool) and "postgres_changes" (a list of dicts with "event", '
                    '"schema", "table", "filter").'
                ),
                id="supa_realtime.E004",
            )
        ]
    errors: list[CheckMessage] = []
    seen: dict[str, int] = {}
    for index, subscription in enumerate(subscriptions):
        problem = _group_problem(subscription)
        if problem is not None:
            errors.append(
                Error(
                    f'SUPA_REALTIME["SUBSCRIPTIONS"][{index}]["topic"] '
                    f"{subscription.topic!r} maps to no usable group: {problem}.",
                    hint="Give the subscription a non-empty topic such as 'realtime:room1'.",
                    id="supa_realtime.E005",
                )
            )
            continue
        group = group_for(subscription.topic)
        if group in seen:
            errors.append(
                Error(
                    f'SUPA_REALTIME["SUBSCRIPTIONS"][{index}] subscribes to '
                    f"{subscription.full_topic!r} again (entry {seen[group]} already does).",
                    hint=(
                        "Merge the two entries: Supabase lets one socket join a topic once, "
                        "and 'room1' and 'realtime:room1' are the same topic."
                    ),
                    id="supa_realtime.E006",
                )
            )
        else:
            seen[group] = index
    return errors


def check_gateway(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E008, W003: the browser gateway's authorization settings."""
    try:
        gateway = realtime_settings.GATEWAY
    except ConfigurationError:
        return []  # reported as E007 by check_settings
    errors: list[CheckMessage] = []
    if gateway.authorize is not None:
        from django.utils.module_loading import import_string

        problem: str | None = None
        try:
            hook = import_string(gateway.authorize)
        except ImportError as exc:
            problem = f"cannot be imported ({exc})"
        else:
            if not callable(hook):
                problem = "is not callable"
        if problem is not None:
            errors.append(
                Error(
                    f'SUPA_REALTIME["GATEWAY"]["AUTHORIZE"] = {gateway.authorize!r} {problem}.',
                    hint=(
                        "Point it at a function (user, topic, action) -> bool, e.g. "
                        '"myapp.realtime.authorize", or remove it.'
                    ),
                    id="supa_realtime.E008",
                )
            )
    for pattern, rule in gateway.tables:
        if rule == "any":
            errors.append(
                Warning(
                    f'SUPA_REALTIME["GATEWAY"]["TABLES"][{pattern!r}] is "any": every visitor, '
                    "signed in or not, receives these rows. The worker reads them with the "
                    "server key, which bypasses row level security.",
                    hint='Use "authenticated", "staff" or a permission unless the rows are public.',
                    id="supa_realtime.W003",
                )
            )
    return errors
