"""wal2json (format-version 2) change records → ``postgres_changes`` ``data`` (PROTOCOL.md §4.3).

Pure conversion, no I/O. Supabase Realtime reads a wal2json slot with the options
``format-version 2``, ``include-pk``, ``include-type-oids``, ``include-timestamp`` and
``actions insert,update,delete``, then shapes each change in SQL: every value goes through
``to_jsonb(value::type)``, ``columns`` come from ``pg_attribute``, ``commit_timestamp`` is
``to_char(ts at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')``. This module reproduces
that shaping in Python from the record alone:

* numbers (``int2/4/8``, ``float4/8``, ``numeric``) stay JSON numbers (wal2json already writes
  ``NaN`` and infinities as ``null``, and so does Supabase); ``bool`` stays boolean;
* ``json``/``jsonb`` text is parsed into nested JSON;
* ``timestamptz``/``timestamp``/``timetz`` text is rewritten in ``to_jsonb``'s form
  (``2025-11-03 09:32:55+00`` → ``2025-11-03T09:32:55+00:00``);
* Postgres array literals become JSON arrays, their elements converted by element type;
* ``bytea`` is bare hex without ``\\x``;
* domains convert as their base type; every other type (``uuid``, ``text``, enums, ``interval``,
  ``money``, ranges, geometric types, ``oid`` …) stays the string Postgres prints.

Shape rules (PROTOCOL.md §4.5): ``old_record`` holds wal2json's ``identity`` (the primary key
unless the table has ``REPLICA IDENTITY FULL``); an unchanged TOAST column missing from an
UPDATE's new tuple is taken from the old one when the identity holds it; a record whose JSON is
larger than ``max_record_bytes`` loses every field whose JSON is over 64 bytes and carries
``errors: ["Error 413: Payload Too Large"]``; an INSERT or UPDATE on a table without a primary
key becomes an error row; TRUNCATE, BEGIN, COMMIT and MESSAGE records give nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "BUILTIN_TYPES",
    "DEFAULT_MAX_RECORD_BYTES",
    "ERROR_NO_PRIMARY_KEY",
    "ERROR_PAYLOAD_TOO_LARGE",
    "OVERSIZE_FIELD_BYTES",
    "WAL2JSON_OPTIONS",
    "PgType",
    "commit_timestamp",
    "convert_value",
    "decode_change",
    "parse_array",
]

DEFAULT_MAX_RECORD_BYTES: Final = 1_048_576
"""Supabase's ``poll_max_record_bytes`` default."""
OVERSIZE_FIELD_BYTES: Final = 64
"""In an oversize record, fields whose JSON is longer than this are omitted."""
ERROR_PAYLOAD_TOO_LARGE: Final = "Error 413: Payload Too Large"
ERROR_NO_PRIMARY_KEY: Final = "Error 400: Bad Request, no primary key"

WAL2JSON_OPTIONS: Final[Mapping[str, str]] = {
    "format-version": "2",
    "include-pk": "true",
    "include-type-oids": "true",
    "include-timestamp": "true",
    "include-transaction": "false",
    "actions": "insert,update,delete",
}
"""The plugin options Supabase's poller passes (table filters are added by the reader)."""

_ACTIONS: Final[Mapping[str, str]] = {"I": "INSERT", "U": "UPDATE", "D": "DELETE"}
_NUMBER_TYPES: Final = frozenset({"int2", "int4", "int8", "float4", "float8", "numeric"})


@dataclass(frozen=True, slots=True)
class PgType:
    """What the converter needs to know about one Postgres type.

    Attributes:
        name: the ``typname`` shown in ``columns`` (``int4``, ``_text``, ``mood`` …).
        base: the ``typname`` whose conversion applies: the base type for a domain, else
            ``name``.
        element: for an array type, its element type.
        delimiter: the delimiter between values of this type inside an array literal
            (``;`` for ``box``, else ``,``).
    """

    name: str
    base: str = ""
    element: PgType | None = None
    delimiter: str = ","

    @property
    def converts_as(self) -> str:
        """The ``typname`` whose value conversion applies."""
        return self.base or self.name


def _builtin_types() -> dict[int, PgType]:
    scalars = {
        16: ("bool", 1000),
        17: ("bytea", 1001),
        18: ("char", 1002),
        19: ("name", 1003),
        20: ("int8", 1016),
        21: ("int2", 1005),
        23: ("int4", 1007),
        25: ("text", 1009),
        26: ("oid", 1028),
        114: ("json", 199),
        142: ("xml", 143),
        600: ("point", 1017),
        650: ("cidr", 651),
        700: ("float4", 1021),
        701: ("float8", 1022),
        790: ("money", 791),
        829: ("macaddr", 1040),
        869: ("inet", 1041),
        1042: ("bpchar", 1014),
        1043: ("varchar", 1015),
        1082: ("date", 1182),
        1083: ("time", 1183),
        1114: ("timestamp", 1115),
        1184: ("timestamptz", 1185),
        1186: ("interval", 1187),
        1266: ("timetz", 1270),
        1560: ("bit", 1561),
        1562: ("varbit", 1563),
        1700: ("numeric", 1231),
        2950: ("uuid", 2951),
        3614: ("tsvector", 3643),
        3802: ("jsonb", 3807),
        3904: ("int4range", 3905),
        3906: ("numrange", 3907),
        3908: ("tsrange", 3909),
        3910: ("tstzrange", 3911),
        3912: ("daterange", 3913),
        3926: ("int8range", 3927),
    }
    types: dict[int, PgType] = {}
    for oid, (name, array_oid) in scalars.items():
        scalar = PgType(name)
        types[oid] = scalar
        types[array_oid] = PgType("_" + name, element=scalar)
    return types


BUILTIN_TYPES: Final[Mapping[int, PgType]] = _builtin_types()
"""Built-in types by oid (built-in oids never change between PostgreSQL versions)."""


# --- values -------------------------------------------------------------------------------

_TIMESTAMPTZ = re.compile(
    r"^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(:\d\d)?(:\d\d)?( BC)?$"
)
_TIMESTAMP = re.compile(r"^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?( BC)?)$")
_TIMETZ = re.compile(r"^(\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(:\d\d)?(:\d\d)?$")


def _timestamptz(text: str) -> str:
    m = _TIMESTAMPTZ.match(text)
    if m is None:  # infinity, -infinity
        return text
    date, time, hours, minutes, seconds, bc = m.groups()
    return f"{date}T{time}{hours}{minutes or ':00'}{seconds or ''}{bc or ''}"


def _timestamp(text: str) -> str:
    m = _TIMESTAMP.match(text)
    return text if m is None else f"{m[1]}T{m[2]}"


def _timetz(text: str) -> str:
    m = _TIMETZ.match(text)
    if m is None:
        return text
    time, hours, minutes, seconds = m.groups()
    return f"{time}{hours}{minutes or ':00'}{seconds or ''}"


def _number(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    # NaN and infinities are strings in to_jsonb (wal2json itself writes them as null).
    return number if math.isfinite(number) else value


def _bytea(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("\\x"):
        return value[2:]
    return value


def _scalar(value: Any, type_name: str) -> Any:
    if type_name in _NUMBER_TYPES:
        return _number(value)
    if type_name == "bool":
        if isinstance(value, str):
            return value in ("t", "true")
        return value
    if type_name in ("json", "jsonb"):
        return json.loads(value) if isinstance(value, str) else value
    if type_name == "timestamptz":
        return _timestamptz(value) if isinstance(value, str) else value
    if type_name == "timestamp":
        return _timestamp(value) if isinstance(value, str) else value
    if type_name == "timetz":
        return _timetz(value) if isinstance(value, str) else value
    if type_name == "bytea":
        return _bytea(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # wal2json writes oid as a number; to_jsonb gives a string
    return value


def convert_value(value: Any, pgtype: PgType) -> Any:
    """Convert one wal2json column value the way Supabase's ``to_jsonb`` cast does.

    Args:
        value: the ``value`` of a wal2json column (a JSON scalar).
        pgtype: the column's type.

    Returns:
        The JSON value that goes into ``record`` / ``old_record``.
    """
    if value is None:
        return None
    if pgtype.element is not None and isinstance(value, str):
        try:
            return parse_array(value, pgtype.element, pgtype.element.delimiter)
        except ValueError:
            return value
    return _scalar(value, pgtype.converts_as)


def parse_array(text: str, element: PgType, delimiter: str = ",") -> list[Any]:
    """Parse a Postgres array literal (``{1,2}``, ``{{"a b",NULL}}``, ``[0:1]={1,2}``).

    Elements are converted with :func:`convert_value` for ``element``; unquoted ``NULL`` is
    ``None``; dimension decorations are ignored, as ``to_jsonb`` ignores them.

    Raises:
        ValueError: ``text`` is not an array literal.
    """
    if text.startswith("["):
        eq = text.find("=")
        if eq < 0:
            raise ValueError(f"not an array literal: {text[:40]!r}")
        text = text[eq + 1 :]
    if not text.startswith("{"):
        raise ValueError(f"not an array literal: {text[:40]!r}")
    result, end = _parse_level(text, 0, element, delimiter)
    if text[end:].strip():
        raise ValueError(f"trailing text after array literal: {text[end:][:40]!r}")
    return result


def _parse_level(text: str, pos: int, element: PgType, delimiter: str) -> tuple[list[Any], int]:
    assert text[pos] == "{"
    pos += 1
    items: list[Any] = []
    n = len(text)
    if pos < n and text[pos] == "}":
        return items, pos + 1
    while pos < n:
        ch = text[pos]
        if ch == "{":
            sub, pos = _parse_level(text, pos, element, delimiter)
            items.append(sub)
        elif ch == '"':
            pos += 1
            buf: list[str] = []
            while pos < n and text[pos] != '"':
                if text[pos] == "\\":
                    pos += 1
                buf.append(text[pos])
                pos += 1
            pos += 1
            items.append(convert_value("".join(buf), element))
        else:
            start = pos
            while pos < n and text[pos] not in (delimiter, "}"):
                pos += 1
            raw = text[start:pos].strip()
            items.append(None if raw.upper() == "NULL" else convert_value(raw, element))
        if pos >= n:
            break
        if text[pos] == delimiter:
            pos += 1
            continue
        if text[pos] == "}":
            return items, pos + 1
        raise ValueError(f"unexpected {text[pos]!r} at {pos} in array literal")
    raise ValueError("unterminated array literal")


def commit_timestamp(text: str) -> str:
    """wal2json's commit ``timestamp`` (``2025-11-19 00:22:40.877123+00``) →
    ``2025-11-19T00:22:40.877Z`` (UTC, milliseconds truncated as ``to_char``'s ``MS`` does).
    """
    normalized = text
    m = re.search(r"([+-]\d\d)(:?\d\d)?(:?\d\d)?$", text)
    if m is not None and m.group(2) is None:
        normalized = text + ":00"
    moment = datetime.fromisoformat(normalized).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --- records ------------------------------------------------------------------------------


def _json_size(value: Any) -> int:
    # jsonb's text form: ", " and ": " separators, non-ASCII kept as UTF-8.
    return len(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")).encode())


def _type_of(column: Mapping[str, Any], types: Mapping[int, PgType]) -> PgType:
    oid = column.get("typeoid")
    if isinstance(oid, int) and oid in types:
        return types[oid]
    if isinstance(oid, int) and oid in BUILTIN_TYPES:
        return BUILTIN_TYPES[oid]
    return PgType(str(column.get("type", "unknown")))


def _row(
    columns: Sequence[Mapping[str, Any]], types: Mapping[int, PgType]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    row: dict[str, Any] = {}
    described: list[dict[str, str]] = []
    for column in columns:
        pgtype = _type_of(column, types)
        name = str(column["name"])
        row[name] = convert_value(column.get("value"), pgtype)
        described.append({"name": name, "type": pgtype.name})
    return row, described


def _trim(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if _json_size(v) <= OVERSIZE_FIELD_BYTES}


def decode_change(
    change: Mapping[str, Any],
    types: Mapping[int, PgType] = BUILTIN_TYPES,
    *,
    table_columns: Sequence[tuple[str, str]] | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    record_bytes: int | None = None,
) -> dict[str, Any] | None:
    """Turn one wal2json format-version 2 record into a ``postgres_changes`` ``data`` dict.

    Args:
        change: the parsed wal2json record.
        types: Postgres types by oid for ``typeoid``s; :data:`BUILTIN_TYPES` fills the gaps.
        table_columns: the table's ``(name, typname)`` pairs in attnum order, as Supabase
            reads them from ``pg_attribute`` for ``columns``; when omitted, ``columns`` is
            built from the record itself (new tuple, then identity).
        max_record_bytes: the 413 threshold (Supabase's ``poll_max_record_bytes``).
        record_bytes: the size of the record's JSON text as read from the slot; when omitted
            it is measured from ``change``.

    Returns:
        The ``data`` dict (``schema``, ``table``, ``type``, ``commit_timestamp``,
        ``columns``, ``record`` and/or ``old_record``, ``errors``), or None for records that
        Supabase never delivers (BEGIN, COMMIT, TRUNCATE, MESSAGE).
    """
    kind = _ACTIONS.get(str(change.get("action")))
    if kind is None:
        return None
    schema = str(change["schema"])
    table = str(change["table"])
    if kind != "DELETE" and not change.get("pk"):
        empty: dict[str, Any] = {
            "schema": schema,
            "table": table,
            "type": kind,
            "commit_timestamp": None,
            "columns": [],
            "record": {},
            "errors": [ERROR_NO_PRIMARY_KEY],
        }
        if kind == "UPDATE":
            empty["old_record"] = {}
        return empty

    new_row, new_columns = _row(change.get("columns") or (), types)
    old_row, old_columns = _row(change.get("identity") or (), types)
    if kind == "UPDATE":
        # Unchanged TOAST values are absent from the new tuple; take them from the old one.
        for name, value in old_row.items():
            new_row.setdefault(name, value)

    if table_columns is not None:
        columns = [{"name": name, "type": typname} for name, typname in table_columns]
    else:
        seen = {c["name"] for c in new_columns}
        columns = new_columns + [c for c in old_columns if c["name"] not in seen]

    if record_bytes is None:
        record_bytes = len(json.dumps(change, ensure_ascii=False).encode())
    errors: list[str] | None = None
    if record_bytes > max_record_bytes:
        errors = [ERROR_PAYLOAD_TOO_LARGE]
        new_row = _trim(new_row)
        old_row = _trim(old_row)

    timestamp = change.get("timestamp")
    data: dict[str, Any] = {
        "schema": schema,
        "table": table,
        "type": kind,
        "commit_timestamp": commit_timestamp(timestamp) if isinstance(timestamp, str) else None,
        "columns": columns,
    }
    if kind in ("INSERT", "UPDATE"):
        data["record"] = new_row
    if kind in ("UPDATE", "DELETE"):
        data["old_record"] = old_row
    data["errors"] = errors
    return data
