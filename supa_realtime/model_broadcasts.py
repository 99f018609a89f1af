"""Model hooks: model saves and deletes broadcast after the transaction commits.

Usage::

    from supa_realtime.model_broadcasts import broadcasts_changes

    @broadcasts_changes(topics=["orders:{pk}", "orders"], fields=["number", "status"])
    class Order(models.Model):
        ...

or ``register(Order, topics=[...], payload=lambda order, event: {...})`` in
``AppConfig.ready()``. Each committed change sends one broadcast per topic, with the event
``"created"``, ``"updated"`` or ``"deleted"`` and the payload ``{"pk": ..., <fields>}`` (or
what ``payload(instance, event)`` returns). Topics are formatted with the instance's
``pk`` and field values (``{customer_id}``).

Theory of operation
-------------------
``post_save`` and ``post_delete`` receivers build and validate each broadcast at once, so an
unencodable or oversized payload raises where ``save()`` was called. Outside a transaction
it is sent at once. Inside one, nothing is sent before the commit, and nothing at all on a
rollback, and all the changes of one instance in one transaction coalesce into one
broadcast per topic:

* created, then updated any number of times → ``created`` with the final state;
* updated, then deleted → ``deleted``;
* created, then deleted → nothing;
* otherwise the last event, with the final state.

Coalescing respects savepoints: each change leaves a marker with ``transaction.on_commit``
inside its own savepoint (Django drops the markers of a rolled-back savepoint), and one
flush per instance, kept last in the connection's commit hooks and outside every savepoint,
sends what the surviving markers describe.

What does not send: ``QuerySet.update()``, ``bulk_create()`` / ``bulk_update()`` (no
signals), raw SQL, and changes made outside Django. For those, subscribe the worker to the
database changes Supabase reads from PostgreSQL's WAL (``postgres_changes``), which see
every committed row whatever wrote it.

:func:`suppress_broadcasts` turns the hooks off in a block (bulk imports, data
migrations); it is a context manager and a decorator (sync and async), scoped with
``contextvars`` to the current thread or task.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, TypeVar

from django.db import connections, models, transaction
from django.db.models.signals import post_delete, post_save

from .broadcast import Prepared, Transport, prepare, send_prepared
from .exceptions import ConfigurationError

__all__ = [
    "EVENTS",
    "ModelBroadcast",
    "broadcasts_changes",
    "coalesce",
    "register",
    "registered",
    "suppress_broadcasts",
    "unregister",
]

logger = logging.getLogger(__name__)

EVENTS: Final = ("created", "updated", "deleted")
CREATED, UPDATED, DELETED = EVENTS

M = TypeVar("M", bound=type[models.Model])
F = TypeVar("F", bound=Callable[..., Any])

PayloadBuilder = Callable[[Any, str], dict[str, Any]]

_suppressed: contextvars.ContextVar[int] = contextvars.ContextVar(
    "supa_realtime_broadcasts_suppressed", default=0
)


@dataclass(frozen=True)
class ModelBroadcast:
    """What one model broadcasts. Build it with :func:`register`."""

    model: type[models.Model]
    topics: tuple[str, ...]
    events: frozenset[str]
    fields: tuple[str, ...] | None
    payload: PayloadBuilder | None
    private: bool = False
    transport: Transport | None = None

    def build(self, instance: models.Model, event: str) -> list[Prepared]:
        """The validated broadcasts of one change (one per topic)."""
        if self.payload is not None:
            body = self.payload(instance, event)
        else:
            body = {"pk": instance.pk}
            for name in self.fields or ():
                model_field = self.model._meta.get_field(name)
                body[name] = getattr(instance, getattr(model_field, "attname", name))
        values = _InstanceValues(instance)
        return [
            prepare(topic.format_map(values), event, body, private=self.private)
            for topic in self.topics
        ]


class _InstanceValues(Mapping[str, Any]):
    """``{pk}``, ``{id}``, ``{customer_id}``, ``{number}`` for topic templates."""

    def __init__(self, instance: models.Model) -> None:
        self._instance = instance

    def __getitem__(self, key: str) -> Any:
        if key == "pk":
            return self._instance.pk
        try:
            return getattr(self._instance, key)
        except AttributeError:
            raise KeyError(key) from None

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


_registry: dict[type[models.Model], ModelBroadcast] = {}


def register(
    model: type[models.Model],
    *,
    topics: Sequence[str],
    events: Iterable[str] = EVENTS,
    fields: Sequence[str] | None = None,
    payload: PayloadBuilder | None = None,
    private: bool = False,
    transport: Transport | None = None,
) -> ModelBroadcast:
    """Broadcast ``model``'s committed changes.

    Args:
        model: the model class.
        topics: topic templates formatted with the instance (``"orders:{pk}"``).
        events: which of ``"created"``, ``"updated"``, ``"deleted"`` to send.
        fields: the fields sent as the payload (with ``pk``); an explicit allowlist.
        payload: instead of ``fields``, ``payload(instance, event) -> dict``.
        private: send to the topics' private channels.
        transport: ``"worker"`` or ``"rest"`` (default: the setting).

    Raises:
        ConfigurationError: what to fix in the declaration.
    """
    name = model._meta.label
    topics = tuple(topics)
    if not topics or not all(isinstance(t, str) and t for t in topics):
        raise ConfigurationError(f"{name}: give topics=[...] (non-empty strings)")
    chosen = frozenset(events)
    unknown = sorted(chosen - set(EVENTS))
    if unknown or not chosen:
        raise ConfigurationError(
            f"{name}: events must be some of {', '.join(EVENTS)}; got {sorted(chosen)}"
        )
    if (fields is None) == (payload is None):
        raise ConfigurationError(
            f"{name}: give either fields=[...] (the fields to send) or payload=callable"
        )
    if fields is not None:
        fields = tuple(fields)
        for field_name in fields:
            try:
                model._meta.get_field(field_name)
            except Exception:  # noqa: BLE001 - FieldDoesNotExist, reported with the name
                raise ConfigurationError(f"{name} has no field {field_name!r}") from None
    config = ModelBroadcast(model, topics, chosen, fields, payload, private, transport)
    _registry[model] = config
    uid = f"supa_realtime.model_broadcasts:{name}"
    post_save.connect(_on_save, sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(_on_delete, sender=model, weak=False, dispatch_uid=uid)
    return config


def broadcasts_changes(
    *,
    topics: Sequence[str],
    events: Iterable[str] = EVENTS,
    fields: Sequence[str] | None = None,
    payload: PayloadBuilder | None = None,
    private: bool = False,
    transport: Transport | None = None,
) -> Callable[[M], M]:
    """Class decorator form of :func:`register`."""

    def decorate(model: M) -> M:
        register(
            model,
            topics=topics,
            events=events,
            fields=fields,
            payload=payload,
            private=private,
            transport=transport,
        )
        return model

    return decorate


def unregister(model: type[models.Model]) -> None:
    """Stop broadcasting ``model``'s changes."""
    _registry.pop(model, None)
    uid = f"supa_realtime.model_broadcasts:{model._meta.label}"
    post_save.disconnect(sender=model, dispatch_uid=uid)
    post_delete.disconnect(sender=model, dispatch_uid=uid)


def registered(model: type[models.Model]) -> ModelBroadcast | None:
    return _registry.get(model)


# -- suppression ---------------------------------------------------------------------------


class suppress_broadcasts:
    """Turn model broadcasts off in a block, or in a decorated (sync or async) function."""

    def __init__(self) -> None:
        self._tokens: list[contextvars.Token[int]] = []

    def __enter__(self) -> None:
        self._tokens.append(_suppressed.set(_suppressed.get() + 1))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _suppressed.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with suppress_broadcasts():
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with suppress_broadcasts():
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]


def broadcasts_suppressed() -> bool:
    """Whether model broadcasts are off here."""
    return _suppressed.get() > 0


# -- signal receivers and coalescing -------------------------------------------------------


def _on_save(
    sender: type[models.Model], instance: models.Model, created: bool, **kwargs: Any
) -> None:
    if kwargs.get("raw"):
        return  # loaddata: fixtures are not changes
    _changed(sender, instance, CREATED if created else UPDATED, kwargs.get("using"))


def _on_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    _changed(sender, instance, DELETED, kwargs.get("using"))


def coalesce(events: Sequence[str]) -> str | None:
    """The one event a sequence of changes of one instance becomes (``None``: nothing)."""
    if not events:
        return None
    first, last = events[0], events[-1]
    if first == CREATED:
        return None if last == DELETED else CREATED
    return last


@dataclass
class _Pending:
    """The changes of one instance in the current transaction."""

    config: ModelBroadcast
    changes: list[tuple[str, list[Prepared]]] = field(default_factory=list)
    survived: list[int] = field(default_factory=list)


class _Transaction:
    """The pending broadcasts of one connection's current transaction and their one flush,
    which is kept as the last commit hook, outside every savepoint."""

    def __init__(self) -> None:
        self.pending: dict[tuple[type[models.Model], Any], _Pending] = {}
        self.hook: tuple[set[str], Callable[[], None], bool] = (set(), self.flush, False)

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        for record in pending.values():
            survivors = [record.changes[i] for i in record.survived]
            event = coalesce([e for e, _ in survivors])
            if event is None or event not in record.config.events:
                continue
            # The final state, under the coalesced event name.
            _, prepared = survivors[-1]
            _send(
                record.config,
                [Prepared(p.topic, event, p.data, p.payload, p.private) for p in prepared],
            )


_STATE_ATTRIBUTE: Final = "_supa_realtime_model_broadcasts"


def _transaction_state(connection: Any) -> _Transaction:
    """This connection's state, moving its flush to the end of the commit hooks."""
    hooks: list[Any] = connection.run_on_commit
    state: _Transaction | None = connection.__dict__.get(_STATE_ATTRIBUTE)
    if state is not None:
        # Usually the flush is one of the last few hooks: search from the end.
        for index in range(len(hooks) - 1, -1, -1):
            if hooks[index] is state.hook:
                del hooks[index]
                hooks.append(state.hook)
                return state
    # First change of this transaction (or the previous one rolled back and took its
    # flush with it): start afresh.
    state = _Transaction()
    connection.__dict__[_STATE_ATTRIBUTE] = state
    hooks.append(state.hook)
    return state


def _changed(
    sender: type[models.Model], instance: models.Model, event: str, using: str | None
) -> None:
    if broadcasts_suppressed():
        return
    config = _registry.get(sender)
    if config is None:
        return
    alias = using or instance._state.db or "default"
    prepared = config.build(instance, event)
    connection = connections[alias]
    if not connection.in_atomic_block:
        if event in config.events:
            _send(config, prepared)
        return
    state = _transaction_state(connection)
    key = (sender, instance.pk)
    record = state.pending.get(key)
    if record is None:
        record = state.pending[key] = _Pending(config)
    index = len(record.changes)
    record.changes.append((event, prepared))
    # The marker lives and dies with the current savepoint; it runs before the flush.
    transaction.on_commit(functools.partial(record.survived.append, index), using=alias)
    hooks: list[Any] = connection.run_on_commit
    if len(hooks) >= 2 and hooks[-2] is state.hook:
        hooks[-2], hooks[-1] = hooks[-1], hooks[-2]
    else:
        _transaction_state(connection)


def _send(config: ModelBroadcast, prepared: list[Prepared]) -> None:
    from .broadcast import _transport

    transport = _transport(config.transport)
    for item in prepared:
        send_prepared(item, transport)
