"""Settings: one typed object that reads ``settings.SUPA_REALTIME`` each time it is asked.

Usage::

    from supa_realtime.conf import settings as realtime_settings

    realtime_settings.URL            # str | None
    realtime_settings.SUBSCRIPTIONS  # tuple[Subscription, ...]

Every attribute is computed from ``django.conf.settings.SUPA_REALTIME`` (a dict) at access time,
so ``override_settings`` and pytest-django's ``settings`` fixture take effect at once. Defaults
live in :data:`DEFAULTS` and in the environment (``SUPABASE_URL``, ``SUPABASE_KEY``,
``SUPABASE_JWT_SECRET``, ``REDIS_URL``). A malformed value raises :class:`ConfigurationError`
naming the exact setting, e.g. ``SUPA_REALTIME["SUBSCRIPTIONS"][1]["presence"]``.

Secrets (``KEY``, ``DEVSERVER["JWT_SECRET"]``) are never defaulted to a literal, never shown in
``repr`` and never quoted in an error message.

To add a setting: put its default in :data:`DEFAULTS`, add a property below, a row in the
README's settings table, and (if it can be malformed) a line in ``checks.check_settings``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from django.conf import settings as django_settings

from supa_realtime.exceptions import BindingError, ConfigurationError
from supa_realtime.phoenix.filters import parse_binding

__all__ = [
    "DEFAULTS",
    "BroadcastSettings",
    "ConfigurationError",
    "DevServerSettings",
    "GatewaySettings",
    "PostgresChangesBinding",
    "ReconnectSettings",
    "Settings",
    "Subscription",
    "WorkerSettings",
    "settings",
]

SETTING_NAME: Final = "SUPA_REALTIME"

#: Every setting's default, in one place. ``None`` for URL/KEY/JWT_SECRET means "from the
#: environment, else unset".
DEFAULTS: Final[Mapping[str, Any]] = {
    "URL": None,  # env SUPABASE_URL
    "KEY": None,  # env SUPABASE_KEY
    "REDIS_URL": None,  # env REDIS_URL, else redis://127.0.0.1:6379/0
    "SUBSCRIPTIONS": [],
    "CHANNEL_LAYER": "default",
    "HEARTBEAT_INTERVAL": 25.0,
    "RECONNECT": {"INITIAL_DELAY": 1.0, "MAX_DELAY": 10.0, "MAX_RETRIES": None},
    "VSN": "2.0.0",
    "PUSH_TIMEOUT": 10.0,
    "DEVSERVER": {
        "HOST": "127.0.0.1",
        "PORT": 54321,
        "JWT_SECRET": None,  # env SUPABASE_JWT_SECRET
        "DATABASE_URL": None,  # else the Django default database when it is PostgreSQL
        "PUBLICATION": None,
        "TABLES": None,
    },
    "REDIS_PREFIX": "supa_realtime",
    "BROADCAST": {
        "TRANSPORT": "worker",
        "MAX_PAYLOAD_BYTES": 256_000,
        "RETENTION_SECONDS": 300.0,
        "RETENTION_MESSAGES": 100_000,
        "MAX_IN_FLIGHT": 1000,
        "LINGER": 30.0,
    },
    "WORKER": {"LEASE_TTL": 10.0, "STATUS_INTERVAL": 2.0},
    "GATEWAY": {
        "AUTHORIZE": None,
        "TOPICS": {},
        "TABLES": {},
        "BRIDGE": [],
        "MAX_CHANNELS": 100,
        "MAX_FRAME_BYTES": 1_000_000,
        "MAX_PAYLOAD_BYTES": 256_000,
        "RATE": 50.0,
        "BURST": 100,
        "FLOOD_CLOSE_AFTER": 20,
        "PRESENCE_TTL": 15.0,
        "PRESENCE_REFRESH": 5.0,
        "PRESENCE_SWEEP": 5.0,
        "BRIDGE_REFRESH": 10.0,
        "BRIDGE_LINGER": 30.0,
        "IDLE_TIMEOUT": 60.0,
    },
}

DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
VSNS: Final = ("1.0.0", "2.0.0")
POSTGRES_EVENTS: Final = ("*", "INSERT", "UPDATE", "DELETE")
SUBSCRIPTION_KEYS: Final = ("topic", "broadcast", "presence", "postgres_changes", "private")
BINDING_KEYS: Final = ("event", "schema", "table", "filter")
SECRET_SETTINGS: Final = frozenset({"KEY"})

PostgresEvent = Literal["*", "INSERT", "UPDATE", "DELETE"]


@dataclass(frozen=True)
class PostgresChangesBinding:
    """One ``postgres_changes`` binding of a subscription (PROTOCOL.md §3.2)."""

    event: PostgresEvent = "*"
    schema: str = "public"
    table: str | None = None
    filter: str | None = None

    def as_config(self) -> dict[str, str]:
        """The binding as it goes into ``phx_join``'s ``config.postgres_changes``."""
        config = {"event": self.event, "schema": self.schema}
        if self.table is not None:
            config["table"] = self.table
        if self.filter is not None:
            config["filter"] = self.filter
        return config


@dataclass(frozen=True)
class Subscription:
    """One entry of ``SUBSCRIPTIONS``: a topic the worker joins and what it relays from it.

    ``broadcast`` is ``"*"`` (every event) or a tuple of event names (empty: none).
    """

    topic: str
    broadcast: Literal["*"] | tuple[str, ...] = "*"
    presence: bool = False
    postgres_changes: tuple[PostgresChangesBinding, ...] = ()
    private: bool = False

    @property
    def full_topic(self) -> str:
        """The topic with its ``realtime:`` prefix, as it goes on the wire."""
        prefix = "realtime:"
        return self.topic if self.topic.startswith(prefix) else prefix + self.topic

    def wants_broadcast(self, event: str) -> bool:
        """Whether a broadcast with this user event is relayed."""
        return self.broadcast == "*" or event in self.broadcast


@dataclass(frozen=True)
class ReconnectSettings:
    """The upstream reconnect schedule: delays grow from ``initial_delay`` to ``max_delay``.

    ``max_retries`` of ``None`` means retry forever.
    """

    initial_delay: float = 1.0
    max_delay: float = 10.0
    max_retries: int | None = None


@dataclass(frozen=True)
class DevServerSettings:
    """Defaults of ``manage.py realtime_devserver``. ``jwt_secret`` is hidden from ``repr``."""

    host: str = "127.0.0.1"
    port: int = 54321
    jwt_secret: str | None = field(default=None, repr=False)
    database_url: str | None = field(default=None, repr=False)
    publication: str | None = None
    tables: tuple[str, ...] | None = None


@dataclass(frozen=True)
class BroadcastSettings:
    """How ``broadcast()`` sends and how long the outbox keeps what the worker has not sent.

    ``transport`` is ``"worker"`` (the outbox, sent by ``manage.py realtime_worker``) or
    ``"rest"`` (``POST /realtime/v1/api/broadcast`` from the calling process). An outbox entry
    is trimmed only once it is older than ``retention_seconds`` *and* at least
    ``retention_messages`` newer entries exist.
    """

    transport: Literal["worker", "rest"] = "worker"
    max_payload_bytes: int = 256_000
    retention_seconds: float = 300.0
    retention_messages: int = 100_000
    max_in_flight: int = 1000
    linger: float = 30.0


@dataclass(frozen=True)
class WorkerSettings:
    """The worker lease and status: ``lease_ttl`` bounds a takeover after a crash."""

    lease_ttl: float = 10.0
    status_interval: float = 2.0


GATEWAY_ACTIONS: Final = ("join", "broadcast", "presence")
GATEWAY_RULES: Final = ("any", "authenticated", "staff")


@dataclass(frozen=True)
class GatewaySettings:
    """The browser gateway (:mod:`supa_realtime.gateway`): who may do what, and its limits.

    ``topics`` maps a subtopic pattern to ``{action: rule}`` and ``tables`` a
    ``"schema.table"`` pattern to a rule; a rule is ``"any"``, ``"authenticated"``,
    ``"staff"`` or a permission name (``"app_label.codename"``). ``bridge`` lists the
    subtopic patterns the worker joins upstream on demand. Presence entries of a dead
    process are gone within ``presence_ttl + presence_sweep`` seconds.
    """

    authorize: str | None = None
    topics: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    tables: tuple[tuple[str, str], ...] = ()
    bridge: tuple[str, ...] = ()
    max_channels: int = 100
    max_frame_bytes: int = 1_000_000
    max_payload_bytes: int = 256_000
    rate: float = 50.0
    burst: int = 100
    flood_close_after: int = 20
    presence_ttl: float = 15.0
    presence_refresh: float = 5.0
    presence_sweep: float = 5.0
    bridge_refresh: float = 10.0
    bridge_linger: float = 30.0
    idle_timeout: float = 60.0


def _rule(value: object, *path: str | int) -> str:
    if (
        not isinstance(value, str)
        or not value
        or (value not in GATEWAY_RULES and value.count(".") != 1)
    ):
        raise ConfigurationError(
            f'{_name(*path)} must be "any", "authenticated", "staff" or a permission '
            f'name such as "app_label.view_model", got {_describe(value)}.'
        )
    return value


def _positive_int(value: object, *path: str | int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(
            f"{_name(*path)} must be a positive integer, got {_describe(value)}."
        )
    return value


def _name(*path: str | int) -> str:
    return SETTING_NAME + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in path)


def _describe(value: object, *, secret: bool = False) -> str:
    if secret:
        return f"a {type(value).__name__}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _positive_number(value: object, *path: str | int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(
            f"{_name(*path)} must be a positive number of seconds, got {_describe(value)}."
        )
    return float(value)


def _bool(value: object, *path: str | int) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{_name(*path)} must be True or False, got {_describe(value)}.")
    return value


def _nonempty_str(value: object, *path: str | int, secret: bool = False) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(
            f"{_name(*path)} must be a non-empty string, got {_describe(value, secret=secret)}."
        )
    return value


def _sub_dict(value: object, defaults: Mapping[str, Any], *path: str | int) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{_name(*path)} must be a dict, got {_describe(value)}.")
    unknown = sorted(str(k) for k in value if k not in defaults)
    if unknown:
        raise ConfigurationError(
            f"{_name(*path)} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known keys are {', '.join(map(repr, defaults))}."
        )
    return {**defaults, **value}


def _parse_binding(value: object, index: int, number: int) -> PostgresChangesBinding:
    path: tuple[str | int, ...] = ("SUBSCRIPTIONS", index, "postgres_changes", number)
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{_name(*path)} must be a dict, got {_describe(value)}.")
    unknown = sorted(str(k) for k in value if k not in BINDING_KEYS)
    if unknown:
        raise ConfigurationError(
            f"{_name(*path)} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known keys are {', '.join(map(repr, BINDING_KEYS))}."
        )
    event = value.get("event", "*")
    if isinstance(event, str):
        event = event.upper()
    if event not in POSTGRES_EVENTS:
        raise ConfigurationError(
            f"{_name(*path, 'event')} must be one of {', '.join(POSTGRES_EVENTS)}, "
            f"got {_describe(event)}."
        )
    schema = _nonempty_str(value.get("schema", "public"), *path, "schema")
    table = value.get("table")
    if table is not None:
        table = _nonempty_str(table, *path, "table")
    filter_ = value.get("filter")
    if filter_ is not None:
        filter_ = _nonempty_str(filter_, *path, "filter")
        if table is None:
            raise ConfigurationError(
                f"{_name(*path, 'filter')} needs a 'table' in the same binding "
                "(Supabase filters apply to one table)."
            )
    binding = PostgresChangesBinding(event=event, schema=schema, table=table, filter=filter_)
    try:
        parse_binding(binding.as_config())
    except BindingError as exc:
        named = _name(*path, "filter") if filter_ is not None else _name(*path)
        raise ConfigurationError(
            f"{named} would be refused by Supabase Realtime: {exc.message}"
        ) from None
    return binding


def _parse_subscription(value: object, index: int) -> Subscription:
    path: tuple[str | int, ...] = ("SUBSCRIPTIONS", index)
    if isinstance(value, str):
        value = {"topic": value}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{_name(*path)} must be a dict (or a topic string), got {_describe(value)}."
        )
    unknown = sorted(str(k) for k in value if k not in SUBSCRIPTION_KEYS)
    if unknown:
        raise ConfigurationError(
            f"{_name(*path)} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known keys are {', '.join(map(repr, SUBSCRIPTION_KEYS))}."
        )
    if "topic" not in value:
        raise ConfigurationError(f"{_name(*path)} has no 'topic'.")
    topic = value["topic"]
    if not isinstance(topic, str):
        raise ConfigurationError(
            f"{_name(*path, 'topic')} must be a string, got {_describe(topic)}."
        )
    broadcast_value = value.get("broadcast", "*")
    broadcast: Literal["*"] | tuple[str, ...]
    if broadcast_value == "*":
        broadcast = "*"
    elif isinstance(broadcast_value, list | tuple) and all(
        isinstance(e, str) and e for e in broadcast_value
    ):
        broadcast = tuple(broadcast_value)
    else:
        raise ConfigurationError(
            f'{_name(*path, "broadcast")} must be "*" or a list of event names, '
            f"got {_describe(broadcast_value)}."
        )
    presence = _bool(value.get("presence", False), *path, "presence")
    private = _bool(value.get("private", False), *path, "private")
    bindings_value = value.get("postgres_changes", [])
    if not isinstance(bindings_value, list | tuple):
        raise ConfigurationError(
            f"{_name(*path, 'postgres_changes')} must be a list of dicts, "
            f"got {_describe(bindings_value)}."
        )
    bindings = tuple(_parse_binding(b, index, n) for n, b in enumerate(bindings_value))
    return Subscription(
        topic=topic,
        broadcast=broadcast,
        presence=presence,
        postgres_changes=bindings,
        private=private,
    )


class Settings:
    """The ``SUPA_REALTIME`` settings, read at attribute access. Use the module's ``settings``."""

    def _user(self) -> Mapping[str, Any]:
        value = getattr(django_settings, SETTING_NAME, None)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"{SETTING_NAME} must be a dict, got {_describe(value)}.")
        return value

    def _get(self, key: str) -> Any:
        return self._user().get(key, DEFAULTS[key])

    @property
    def unknown_keys(self) -> tuple[str, ...]:
        """Top-level keys of ``SUPA_REALTIME`` that no setting reads (usually typos)."""
        return tuple(sorted(str(k) for k in self._user() if k not in DEFAULTS))

    @property
    def URL(self) -> str | None:
        """The Supabase project URL (``https://<ref>.supabase.co``) or a Realtime server URL."""
        value = self._get("URL")
        if value is None:
            value = os.environ.get("SUPABASE_URL") or None
        if value is None:
            return None
        url = _nonempty_str(value, "URL")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
            raise ConfigurationError(
                f"{_name('URL')} must be an http(s):// or ws(s):// URL with a host, "
                f"got {_describe(url)}."
            )
        return url

    @property
    def KEY(self) -> str | None:
        """The server key (``service_role`` or secret key). Never logged or shown."""
        value = self._get("KEY")
        if value is None:
            value = os.environ.get("SUPABASE_KEY") or None
        if value is None:
            return None
        return _nonempty_str(value, "KEY", secret=True)

    @property
    def REDIS_URL(self) -> str:
        """The Redis used for presence, the outbox and worker leases."""
        value = self._get("REDIS_URL")
        if value is None:
            value = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
        url = _nonempty_str(value, "REDIS_URL")
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigurationError(
                f"{_name('REDIS_URL')} must be a redis://, rediss:// or unix:// URL."
            )
        return url

    @property
    def SUBSCRIPTIONS(self) -> tuple[Subscription, ...]:
        """The topics the worker joins, parsed and checked."""
        value = self._get("SUBSCRIPTIONS")
        if not isinstance(value, list | tuple):
            raise ConfigurationError(
                f"{_name('SUBSCRIPTIONS')} must be a list of dicts, got {_describe(value)}."
            )
        return tuple(_parse_subscription(entry, i) for i, entry in enumerate(value))

    @property
    def CHANNEL_LAYER(self) -> str:
        """The alias in ``CHANNEL_LAYERS`` that relayed events go through."""
        return _nonempty_str(self._get("CHANNEL_LAYER"), "CHANNEL_LAYER")

    @property
    def HEARTBEAT_INTERVAL(self) -> float:
        """Seconds between heartbeats on the upstream socket."""
        return _positive_number(self._get("HEARTBEAT_INTERVAL"), "HEARTBEAT_INTERVAL")

    @property
    def RECONNECT(self) -> ReconnectSettings:
        """The upstream reconnect schedule."""
        value = _sub_dict(self._get("RECONNECT"), DEFAULTS["RECONNECT"], "RECONNECT")
        initial = _positive_number(value["INITIAL_DELAY"], "RECONNECT", "INITIAL_DELAY")
        maximum = _positive_number(value["MAX_DELAY"], "RECONNECT", "MAX_DELAY")
        if maximum < initial:
            raise ConfigurationError(
                f"{_name('RECONNECT', 'MAX_DELAY')} ({maximum:g}) must not be smaller than "
                f"{_name('RECONNECT', 'INITIAL_DELAY')} ({initial:g})."
            )
        retries = value["MAX_RETRIES"]
        if retries is not None and (
            isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
        ):
            raise ConfigurationError(
                f"{_name('RECONNECT', 'MAX_RETRIES')} must be None (retry forever) or an "
                f"integer >= 0, got {_describe(retries)}."
            )
        return ReconnectSettings(initial_delay=initial, max_delay=maximum, max_retries=retries)

    @property
    def VSN(self) -> str:
        """The serializer version spoken upstream: ``"2.0.0"`` (default) or ``"1.0.0"``."""
        value = self._get("VSN")
        if value not in VSNS:
            raise ConfigurationError(
                f"{_name('VSN')} must be one of {', '.join(map(repr, VSNS))}, "
                f"got {_describe(value)}."
            )
        return str(value)

    @property
    def PUSH_TIMEOUT(self) -> float:
        """Seconds to wait for the server's reply to a join or push."""
        return _positive_number(self._get("PUSH_TIMEOUT"), "PUSH_TIMEOUT")

    @property
    def DEVSERVER(self) -> DevServerSettings:
        """Defaults of the local Realtime server command."""
        value = _sub_dict(self._get("DEVSERVER"), DEFAULTS["DEVSERVER"], "DEVSERVER")
        host = _nonempty_str(value["HOST"], "DEVSERVER", "HOST")
        port = value["PORT"]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(
                f"{_name('DEVSERVER', 'PORT')} must be an integer from 0 to 65535, "
                f"got {_describe(port)}."
            )
        secret = value["JWT_SECRET"]
        if secret is None:
            secret = os.environ.get("SUPABASE_JWT_SECRET") or None
        if secret is not None:
            secret = _nonempty_str(secret, "DEVSERVER", "JWT_SECRET", secret=True)
        database_url = value["DATABASE_URL"]
        if database_url is not None:
            database_url = _nonempty_str(database_url, "DEVSERVER", "DATABASE_URL", secret=True)
        publication = value["PUBLICATION"]
        if publication is not None:
            publication = _nonempty_str(publication, "DEVSERVER", "PUBLICATION")
        tables = value["TABLES"]
        if tables is not None:
            if isinstance(tables, str) or not isinstance(tables, (list, tuple)):
                raise ConfigurationError(
                    f'{_name("DEVSERVER", "TABLES")} must be a list of "schema.table" '
                    f"patterns or None, got {_describe(tables)}."
                )
            tables = tuple(_nonempty_str(t, "DEVSERVER", "TABLES", i) for i, t in enumerate(tables))
            if publication is not None:
                raise ConfigurationError(
                    f"{_name('DEVSERVER', 'TABLES')} and {_name('DEVSERVER', 'PUBLICATION')} "
                    "cannot both be set: give one of them."
                )
        return DevServerSettings(
            host=host,
            port=port,
            jwt_secret=secret,
            database_url=database_url,
            publication=publication,
            tables=tables,
        )

    @property
    def REDIS_PREFIX(self) -> str:
        """Prefix of supa_realtime's own Redis keys (outbox stream, counters, lease, status)."""
        return _nonempty_str(self._get("REDIS_PREFIX"), "REDIS_PREFIX")

    @property
    def BROADCAST(self) -> BroadcastSettings:
        """How ``broadcast()`` sends, its payload limit and the outbox retention."""
        value = _sub_dict(self._get("BROADCAST"), DEFAULTS["BROADCAST"], "BROADCAST")
        transport = value["TRANSPORT"]
        if transport not in ("worker", "rest"):
            raise ConfigurationError(
                f'{_name("BROADCAST", "TRANSPORT")} must be "worker" or "rest", '
                f"got {_describe(transport)}."
            )
        return BroadcastSettings(
            transport=transport,
            max_payload_bytes=_positive_int(
                value["MAX_PAYLOAD_BYTES"], "BROADCAST", "MAX_PAYLOAD_BYTES"
            ),
            retention_seconds=_positive_number(
                value["RETENTION_SECONDS"], "BROADCAST", "RETENTION_SECONDS"
            ),
            retention_messages=_positive_int(
                value["RETENTION_MESSAGES"], "BROADCAST", "RETENTION_MESSAGES"
            ),
            max_in_flight=_positive_int(value["MAX_IN_FLIGHT"], "BROADCAST", "MAX_IN_FLIGHT"),
            linger=_positive_number(value["LINGER"], "BROADCAST", "LINGER"),
        )

    @property
    def WORKER(self) -> WorkerSettings:
        """The worker lease (one active worker at a time) and its status updates."""
        value = _sub_dict(self._get("WORKER"), DEFAULTS["WORKER"], "WORKER")
        return WorkerSettings(
            lease_ttl=_positive_number(value["LEASE_TTL"], "WORKER", "LEASE_TTL"),
            status_interval=_positive_number(value["STATUS_INTERVAL"], "WORKER", "STATUS_INTERVAL"),
        )

    @property
    def GATEWAY(self) -> GatewaySettings:
        """The browser gateway's authorization rules, limits and presence timings."""
        value = _sub_dict(self._get("GATEWAY"), DEFAULTS["GATEWAY"], "GATEWAY")
        authorize = value["AUTHORIZE"]
        if authorize is not None and (
            not isinstance(authorize, str) or "." not in authorize.strip(".")
        ):
            raise ConfigurationError(
                f"{_name('GATEWAY', 'AUTHORIZE')} must be None or the dotted path of a "
                f"callable (user, topic, action) -> bool, got {_describe(authorize)}."
            )
        topics_value = value["TOPICS"]
        if not isinstance(topics_value, Mapping):
            raise ConfigurationError(
                f"{_name('GATEWAY', 'TOPICS')} must be a dict of topic pattern -> "
                f"{{action: rule}}, got {_describe(topics_value)}."
            )
        topics: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        for pattern, actions in topics_value.items():
            pattern = _nonempty_str(pattern, "GATEWAY", "TOPICS")
            if not isinstance(actions, Mapping):
                raise ConfigurationError(
                    f"{_name('GATEWAY', 'TOPICS', pattern)} must be a dict of action -> rule, "
                    f"got {_describe(actions)}."
                )
            rules: list[tuple[str, str]] = []
            for action, rule in actions.items():
                if action not in GATEWAY_ACTIONS:
                    raise ConfigurationError(
                        f"{_name('GATEWAY', 'TOPICS', pattern)} has an unknown action "
                        f"{action!r}; actions are {', '.join(map(repr, GATEWAY_ACTIONS))} "
                        '(database changes are allowed per table in GATEWAY["TABLES"]).'
                    )
                rules.append((action, _rule(rule, "GATEWAY", "TOPICS", pattern, action)))
            topics.append((pattern, tuple(rules)))
        tables_value = value["TABLES"]
        if not isinstance(tables_value, Mapping):
            raise ConfigurationError(
                f'{_name("GATEWAY", "TABLES")} must be a dict of "schema.table" -> rule, '
                f"got {_describe(tables_value)}."
            )
        tables: list[tuple[str, str]] = []
        for table, rule in tables_value.items():
            if not isinstance(table, str) or table.count(".") != 1:
                raise ConfigurationError(
                    f'{_name("GATEWAY", "TABLES")} keys must be "schema.table" patterns '
                    f'such as "public.todos" or "public.*", got {_describe(table)}.'
                )
            tables.append((table, _rule(rule, "GATEWAY", "TABLES", table)))
        bridge_value = value["BRIDGE"]
        if not isinstance(bridge_value, list | tuple) or not all(
            isinstance(b, str) and b for b in bridge_value
        ):
            raise ConfigurationError(
                f"{_name('GATEWAY', 'BRIDGE')} must be a list of topic patterns, "
                f"got {_describe(bridge_value)}."
            )
        ttl = _positive_number(value["PRESENCE_TTL"], "GATEWAY", "PRESENCE_TTL")
        refresh = _positive_number(value["PRESENCE_REFRESH"], "GATEWAY", "PRESENCE_REFRESH")
        if refresh >= ttl:
            raise ConfigurationError(
                f"{_name('GATEWAY', 'PRESENCE_REFRESH')} ({refresh:g}) must be smaller than "
                f"{_name('GATEWAY', 'PRESENCE_TTL')} ({ttl:g}), or live entries expire."
            )
        return GatewaySettings(
            authorize=authorize,
            topics=tuple(topics),
            tables=tuple(tables),
            bridge=tuple(bridge_value),
            max_channels=_positive_int(value["MAX_CHANNELS"], "GATEWAY", "MAX_CHANNELS"),
            max_frame_bytes=_positive_int(value["MAX_FRAME_BYTES"], "GATEWAY", "MAX_FRAME_BYTES"),
            max_payload_bytes=_positive_int(
                value["MAX_PAYLOAD_BYTES"], "GATEWAY", "MAX_PAYLOAD_BYTES"
            ),
            rate=_positive_number(value["RATE"], "GATEWAY", "RATE"),
            burst=_positive_int(value["BURST"], "GATEWAY", "BURST"),
            flood_close_after=_positive_int(
                value["FLOOD_CLOSE_AFTER"], "GATEWAY", "FLOOD_CLOSE_AFTER"
            ),
            presence_ttl=ttl,
            presence_refresh=refresh,
            presence_sweep=_positive_number(value["PRESENCE_SWEEP"], "GATEWAY", "PRESENCE_SWEEP"),
            bridge_refresh=_positive_number(value["BRIDGE_REFRESH"], "GATEWAY", "BRIDGE_REFRESH"),
            bridge_linger=_positive_number(value["BRIDGE_LINGER"], "GATEWAY", "BRIDGE_LINGER"),
            idle_timeout=_positive_number(value["IDLE_TIMEOUT"], "GATEWAY", "IDLE_TIMEOUT"),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of settings.{SETTING_NAME} (KEY hidden)>"


settings: Final = Settings()
