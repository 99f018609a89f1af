"""postgres_changes bindings: parsing, ids and matching, with the Realtime server's semantics.

Theory of operation
-------------------
A channel's join payload lists its subscriptions in ``config.postgres_changes``
(PROTOCOL.md §4.1). :func:`parse_binding` turns one of those objects into a
:class:`Binding` the way the server's ``parse_subscription_params`` does, and raises
:class:`~supa_realtime.exceptions.BindingError` carrying the exact text the server would
send in its ``postgres_changes`` ``system`` error (§3.7):

* the ``event`` is upper-cased; anything but ``*``/``INSERT``/``UPDATE``/``DELETE`` is ``*``;
* ``schema`` + ``table`` (+ ``filter``), ``schema`` alone (every table) or ``table`` alone
  (schema ``public``) are accepted; any other shape is "No subscription params provided",
  with the params printed as Elixir prints a map;
* ``select`` must be a list (its strings are kept; an empty list means "primary key only")
  and is refused on wildcard subscriptions;
* the filter grammar of §4.2 (:func:`parse_filter`): conditions joined by top-level commas,
  each ``column=[not.]op.value``; double quotes (with ``\\"`` and ``\\\\``) protect commas,
  parentheses and blanks; ``in`` needs ``(...)``;
* the checks the server's database trigger makes without looking at the table: at most 100
  ``in`` values, ``is`` only with ``null``/``true``/``false``/``unknown``, and a regular
  expression that compiles. Those come back as "Unable to subscribe to changes ...".
  Checks that need the table (unknown column, value of the wrong type) are left to
  :func:`matches`, which treats such a condition as false.

:func:`binding_id` is the subscription id of the join reply (§3.4): stable for equal params
objects, in ``0 <= id < 2**27`` like the server's ``phash2``. :func:`matches` decides whether
a change (the ``data`` of a §4.3 frame) is delivered to a binding: event, schema and table
(``LIKE`` patterns, as the server's publication lookup uses them), then every condition,
evaluated on ``record`` (``old_record`` for DELETE) with the column types of ``columns``
(:mod:`.pg_values`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..exceptions import BindingError
from . import constants as c
from . import pg_values as pg
from .elixir_terms import Tuple, inspect_term

__all__ = [
    "OPERATORS",
    "Binding",
    "Condition",
    "binding_id",
    "event_matches",
    "matches",
    "matching_ids",
    "parse_binding",
    "parse_filter",
]

OPERATORS = frozenset(
    [
        "eq",
        "neq",
        "lt",
        "lte",
        "gt",
        "gte",
        "in",
        "like",
        "ilike",
        "is",
        "match",
        "imatch",
        "isdistinct",
    ]
)
_EVENTS = ("INSERT", "UPDATE", "DELETE")
_IS_VALUES = ("null", "true", "false", "unknown")
_ID_SPACE = 2**27

_FILTER_ERROR = "Error parsing `filter` params: "
_NO_PARAMS = (
    "No subscription params provided. Please provide at least a `schema` or `table` to "
    "subscribe to: "
)
_SELECT_ERROR = (
    'Error parsing `select` params: expected a list of column name strings, e.g. select: ["col1", '
    '"col2"]'
)
_SELECT_WILDCARD = (
    "Column selection is not supported for wildcard subscriptions. Provide an explicit schema "
    "and table name."
)
_UNABLE = (
    "Unable to subscribe to changes with given parameters. An exception happened so please "
    "check your connect parameters: [{params}]. Exception: {exception}"
)


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter condition, ``column=[not.]op.value``.

    ``value`` is the unquoted text, or for ``in`` the tuple of list elements.
    ``in_null`` records an unquoted ``NULL`` element of an ``in`` list (SQL NULL, so an
    ``in`` that does not otherwise match is unknown rather than false).
    """

    column: str
    op: str
    value: str | tuple[str, ...]
    negate: bool = False
    in_null: bool = False


@dataclass(frozen=True, slots=True)
class Binding:
    """One parsed ``postgres_changes`` subscription of a channel."""

    params: Mapping[str, Any] = field(hash=False)
    id: int
    event: str
    schema: str
    table: str
    conditions: tuple[Condition, ...]
    select: tuple[str, ...] | None

    def reply_entry(self) -> dict[str, Any]:
        """The join reply's entry for this binding: the client's object plus ``id``."""
        return {**self.params, "id": self.id}


class _DatabaseCheck(BindingError):
    """A condition the server's database trigger refuses; wrapped by :func:`parse_binding`."""


# --- ids ----------------------------------------------------------------------------------


def binding_id(params: Mapping[str, Any]) -> int:
    """The subscription id for a params object: equal objects get equal ids, in ``[0, 2**27)``.

    Computed from canonical JSON (sorted keys, compact, UTF-8) with BLAKE2b, so it is stable
    across processes, machines and versions.
    """
    text = json.dumps(
        params, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
    )
    canonical = text.encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(canonical, digest_size=8, person=b"supa_rt-pgc").digest()
    return int.from_bytes(digest, "big") % _ID_SPACE


# --- filter grammar -----------------------------------------------------------------------


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and double quotes, as the server scans.

    A double quote opens a quoted run only after ``.``, ``(`` or ``,``; inside one, a
    backslash keeps the next character.
    """
    segments: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    prev = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\" and i + 1 < len(text):
                current.append(text[i : i + 2])
                prev = text[i + 1]
                i += 2
                continue
            if ch == '"':
                quoted = False
            current.append(ch)
        elif ch == '"' and prev in (".", "(", ","):
            quoted = True
            current.append(ch)
        elif ch == "(":
            depth += 1
            current.append(ch)
        elif ch == ")":
            depth = max(0, depth - 1)
            current.append(ch)
        elif ch == "," and depth == 0:
            segments.append("".join(current))
            current = []
            ch = ""
        else:
            current.append(ch)
        prev = ch
        i += 1
    segments.append("".join(current))
    return segments


def _unquote(value: str) -> str:
    """``"a,b"`` -> ``a,b`` with ``\\x`` -> ``x``; a malformed quoted value is kept as is."""
    if not value.startswith('"'):
        return value
    out: list[str] = []
    i = 1
    while i < len(value):
        ch = value[i]
        if ch == '"':
            return "".join(out) if i == len(value) - 1 else value
        if ch == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return value


_RawFilter = tuple[str, str, str, bool]


def _parse_segment(segment: str) -> _RawFilter:
    trimmed = segment.strip()
    if not trimmed:
        raise BindingError(
            _FILTER_ERROR + "filter must not contain empty segments (check for extra commas)"
        )
    column, eq, rest = trimmed.partition("=")
    if not eq:
        raise BindingError(_FILTER_ERROR + inspect_term([trimmed]))
    negate = rest.startswith("not.")
    op_value = rest[4:] if negate else rest
    op, dot, value = op_value.partition(".")
    if not dot:
        raise BindingError(_FILTER_ERROR + inspect_term([op_value]))
    if op not in OPERATORS:
        raise BindingError(_FILTER_ERROR + inspect_term([op, value]))
    if op == "in":
        if len(value) < 2 or not (value.startswith("(") and value.endswith(")")):
            raise BindingError(_FILTER_ERROR + "`in` filter value must be wrapped by parentheses")
        return (column, op, "{" + value[1:-1] + "}", negate)
    return (column, op, _unquote(value), negate)


def _parse_raw(text: str) -> list[_RawFilter]:
    trimmed = text.strip()
    if not trimmed:
        return []
    return [_parse_segment(segment) for segment in _split_top_level(trimmed)]


def _exception(sqlstate: str, name: str, message: str) -> _DatabaseCheck:
    return _DatabaseCheck(f"ERROR {sqlstate} ({name}) {message}")


def _condition(raw: _RawFilter) -> Condition:
    column, op, value, negate = raw
    if op == "in":
        try:
            items = pg.parse_array_literal(value)
        except pg.CastError as exc:
            # Postgres's own text; Postgrex may add its DETAIL line, which is not reproduced.
            raise _exception("22P02", "invalid_text_representation", str(exc)) from None
        if len(items) > c.MAX_IN_FILTER_VALUES:
            raise _exception(
                "P0001",
                "raise_exception",
                f"too many values for `in` filter. Maximum {c.MAX_IN_FILTER_VALUES}",
            )
        elements = tuple(item for item in items if item is not None)
        return Condition(column, op, elements, negate, in_null=len(elements) != len(items))
    if op == "is" and value not in _IS_VALUES:
        raise _exception(
            "P0001",
            "raise_exception",
            "invalid value for is filter: must be null, true, false, or unknown",
        )
    if op in ("match", "imatch"):
        try:
            pg.posix_regex(value, op == "imatch")
        except re.error as exc:
            raise _exception(
                "P0001",
                "raise_exception",
                f"invalid regular expression for {op} filter: invalid regular expression: {exc}",
            ) from None
    return Condition(column, op, value, negate)


def parse_filter(text: str) -> tuple[Condition, ...]:
    """Parse a ``filter`` string (PROTOCOL.md §4.2); empty or blank text is no condition.

    Raises:
        BindingError: with the server's message, e.g.
            ``Error parsing `filter` params: ["foo", "hey"]`` for an unknown operator. A
            condition the server's database would refuse (over 100 ``in`` values, a bad
            ``is`` value or regular expression) raises with the database error text;
            :func:`parse_binding` puts that into the full server sentence.
    """
    return tuple(_condition(raw) for raw in _parse_raw(text))


# --- bindings -----------------------------------------------------------------------------


def _action(params: Mapping[str, Any]) -> str:
    event = params.get("event")
    if not isinstance(event, str):
        return "*"
    upper = event.upper()
    return upper if upper in _EVENTS else "*"


def _no_params(params: Any) -> BindingError:
    if isinstance(params, Mapping) and ("user_token" in params or "auth_token" in params):
        return BindingError(_NO_PARAMS + "<redacted>")
    return BindingError(_NO_PARAMS + inspect_term(params))


def _to_log(value: Any) -> str:
    return value if isinstance(value, str) else inspect_term(value, pretty=True)


def parse_binding(params: Mapping[str, Any]) -> Binding:
    """Parse one ``config.postgres_changes`` object as the server does (PROTOCOL.md §4.1).

    Raises:
        BindingError: ``.message`` is the server's ``system`` message text for this object.
    """
    if not isinstance(params, Mapping):
        raise _no_params(params)
    action = _action(params)
    raw_select = params.get("select")
    select: tuple[str, ...] | None = None
    if isinstance(raw_select, list):
        select = tuple(col for col in raw_select if isinstance(col, str))
    elif isinstance(raw_select, str):
        raise BindingError(_SELECT_ERROR)

    schema, table, filter_text = params.get("schema"), params.get("table"), params.get("filter")
    raw: list[_RawFilter] = []
    if isinstance(schema, str) and isinstance(table, str) and isinstance(filter_text, str):
        raw = _parse_raw(filter_text)
    elif isinstance(schema, str) and isinstance(table, str) and "filter" not in params:
        pass
    elif isinstance(schema, str) and "table" not in params and "filter" not in params:
        table = "*"
    elif isinstance(table, str) and "schema" not in params and "filter" not in params:
        schema = "public"
    else:
        raise _no_params(params)
    assert isinstance(schema, str)
    assert isinstance(table, str)
    if select is not None and (schema == "*" or table == "*"):
        raise BindingError(_SELECT_WILDCARD)

    try:
        conditions = tuple(_condition(item) for item in raw)
    except _DatabaseCheck as exc:
        logged = ", ".join(
            [
                f"event: {action}",
                f"schema: {schema}",
                f"table: {table}",
                f"filters: {_to_log([Tuple(item) for item in raw])}",
                f"select: {_to_log(None if select is None else list(select))}",
            ]
        )
        raise BindingError(_UNABLE.format(params=logged, exception=exc.message)) from None
    return Binding(
        params=params,
        id=binding_id(params),
        event=action,
        schema=schema,
        table=table,
        conditions=conditions,
        select=select,
    )


# --- matching -----------------------------------------------------------------------------


def event_matches(binding_event: str, change_type: str) -> bool:
    """Whether a binding's ``event`` takes a change of this ``type`` (PROTOCOL.md §4.4)."""
    return binding_event == "*" or binding_event.upper() == change_type.upper()


@lru_cache(maxsize=1024)
def _name_pattern(pattern: str) -> re.Pattern[str] | None:
    # The server looks tables up with ``name LIKE pattern ESCAPE ''``: % and _ are wildcards.
    if pattern == "*":
        return None
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile(regex, re.DOTALL)


def _name_matches(pattern: str, name: Any) -> bool:
    compiled = _name_pattern(pattern)
    if compiled is None:
        return True
    return isinstance(name, str) and compiled.fullmatch(name) is not None


def _column_types(change: Mapping[str, Any]) -> dict[str, str]:
    types: dict[str, str] = {}
    columns = change.get("columns")
    if isinstance(columns, list):
        for column in columns:
            if isinstance(column, Mapping):
                name, type_name = column.get("name"), column.get("type")
                if isinstance(name, str) and isinstance(type_name, str):
                    types[name] = type_name
    return types


_Cast = tuple[bool, Any]  # (cast succeeded, value)


@lru_cache(maxsize=4096)
def _cast_filter_value(text: str, type_name: str | None) -> _Cast:
    """A filter's own value cast to a column type; cached, as filters repeat for every row."""
    try:
        return True, pg.cast(text, type_name)
    except pg.CastError:
        return False, None


@lru_cache(maxsize=1024)
def _cast_filter_items(items: tuple[str, ...], type_name: str | None) -> tuple[Any, ...] | None:
    try:
        return tuple(pg.cast(item, type_name) for item in items)
    except pg.CastError:
        return None


def _right(cond: Condition, type_name: str | None) -> Any:
    ok, value = _cast_filter_value(str(cond.value), type_name)
    if not ok:
        raise pg.CastError(f"{cond.value!r} is not a {type_name}")
    return value


def _evaluate(cond: Condition, value: Any, type_name: str | None) -> bool | None:
    """Three-valued result of one condition (``None`` = SQL unknown), negation included."""
    text = pg.record_text(value)
    op = cond.op
    try:
        if op == "is":
            # Postgres casts the value even to test it for NULL, and some record values
            # (arrays, sent as JSON) do not cast back to their type.
            if text is not None:
                pg.cast(text, type_name)
            if cond.value in ("null", "unknown"):
                result: bool | None = text is None
            elif type_name not in (None, "bool"):
                return None  # IS TRUE/FALSE needs a boolean column
            else:
                truth = None if text is None else pg.cast(text, "bool")
                result = truth is (cond.value == "true")
        elif op == "isdistinct":
            right = _right(cond, type_name)
            result = text is None or pg.cast(text, type_name) != right
        elif text is None:
            return None
        elif op == "in":
            listed = cond.value if isinstance(cond.value, tuple) else (cond.value,)
            items = _cast_filter_items(listed, type_name)
            if items is None:
                return None
            left = pg.cast(text, type_name)
            found = any(left == item for item in items)
            result = True if found else (None if cond.in_null else False)
        elif op in ("like", "ilike"):
            if type_name is not None and type_name not in pg.TEXT_TYPES:
                return None
            pattern = pg.like_regex(_right(cond, type_name), op == "ilike")
            if pattern is None:
                return None
            result = pattern.fullmatch(pg.cast(text, type_name)) is not None
        elif op in ("match", "imatch"):
            if type_name is not None and type_name not in pg.TEXT_TYPES:
                return None
            regex = pg.posix_regex(str(cond.value), op == "imatch")
            result = regex.search(pg.cast(text, type_name)) is not None
        else:
            result = pg.compare(op, pg.cast(text, type_name), _right(cond, type_name))
    except (pg.CastError, re.error):
        return None
    if result is None:
        return None
    return not result if cond.negate else result


@dataclass(frozen=True, slots=True)
class _Change:
    """What matching needs from a change, worked out once for all bindings."""

    type: str
    schema: Any
    table: Any
    row: Mapping[str, Any] | None
    types: dict[str, str]


def _view(change: Mapping[str, Any]) -> _Change | None:
    change_type = change.get("type")
    if not isinstance(change_type, str):
        return None
    row = change.get("old_record" if change_type.upper() == "DELETE" else "record")
    return _Change(
        type=change_type,
        schema=change.get("schema"),
        table=change.get("table"),
        row=row if isinstance(row, Mapping) else None,
        types=_column_types(change),
    )


def _matches(binding: Binding, change: _Change) -> bool:
    if not event_matches(binding.event, change.type):
        return False
    if not _name_matches(binding.schema, change.schema):
        return False
    if not _name_matches(binding.table, change.table):
        return False
    if not binding.conditions:
        return True
    row = change.row
    if row is None:
        return False
    for cond in binding.conditions:
        if cond.column not in row:
            return False
        if _evaluate(cond, row[cond.column], change.types.get(cond.column)) is not True:
            return False
    return True


def matches(binding: Binding, change: Mapping[str, Any]) -> bool:
    """Whether ``change`` (the ``data`` of a postgres_changes frame) goes to ``binding``.

    The event, schema and table must match; then every condition must hold on ``record``
    (``old_record`` for DELETE). A condition on a column the row does not carry is false.
    """
    view = _view(change)
    return view is not None and _matches(binding, view)


def matching_ids(bindings: Iterable[Binding], change: Mapping[str, Any]) -> list[int]:
    """The ids (each once, in binding order) of the bindings ``change`` is delivered to."""
    view = _view(change)
    ids: list[int] = []
    if view is None:
        return ids
    for binding in bindings:
        if binding.id not in ids and _matches(binding, view):
            ids.append(binding.id)
    return ids
