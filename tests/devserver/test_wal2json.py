"""wal2json format-version 2 records → postgres_changes ``data``, from literal records.

The records are copied from what wal2json 2.5 printed on PostgreSQL 15 for the same SQL
(``include-pk``, ``include-type-oids``, ``include-timestamp``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from supa_realtime.devserver.wal2json import (
    BUILTIN_TYPES,
    ERROR_NO_PRIMARY_KEY,
    ERROR_PAYLOAD_TOO_LARGE,
    PgType,
    commit_timestamp,
    convert_value,
    decode_change,
    parse_array,
)

TS = "2025-11-19 00:22:40.877123+00"
PK = [{"name": "id", "type": "bigint", "typeoid": 20}]


def col(name: str, typeoid: int, value: Any, type_: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_ or "x", "typeoid": typeoid, "value": value}


# --- whole records ------------------------------------------------------------------------

INSERT = {
    "action": "I",
    "timestamp": TS,
    "schema": "public",
    "table": "test",
    "columns": [
        col("id", 20, 46),
        col("created_at", 1184, "2025-11-03 09:32:55+00"),
        col("text", 25, "content"),
    ],
    "pk": PK,
}
COLUMNS = [
    {"name": "id", "type": "int8"},
    {"name": "created_at", "type": "timestamptz"},
    {"name": "text", "type": "text"},
]
RECORD = {"id": 46, "created_at": "2025-11-03T09:32:55+00:00", "text": "content"}

RECORD_CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
    (
        "insert",
        INSERT,
        {
            "schema": "public",
            "table": "test",
            "type": "INSERT",
            "commit_timestamp": "2025-11-19T00:22:40.877Z",
            "columns": COLUMNS,
            "record": RECORD,
            "errors": None,
        },
    ),
    (
        "update, default replica identity: old_record is the primary key",
        {**INSERT, "action": "U", "identity": [col("id", 20, 46)]},
        {
            "schema": "public",
            "table": "test",
            "type": "UPDATE",
            "commit_timestamp": "2025-11-19T00:22:40.877Z",
            "columns": COLUMNS,
            "record": RECORD,
            "old_record": {"id": 46},
            "errors": None,
        },
    ),
    (
        "update, replica identity full: unchanged TOAST value taken from the old tuple",
        {
            **INSERT,
            "action": "U",
            "columns": [col("id", 20, 46), col("text", 25, "new")],
            "identity": [
                col("id", 20, 46),
                col("created_at", 1184, "2025-11-03 09:32:55+00"),
                col("text", 25, "old"),
            ],
        },
        {
            "schema": "public",
            "table": "test",
            "type": "UPDATE",
            "commit_timestamp": "2025-11-19T00:22:40.877Z",
            "columns": [
                {"name": "id", "type": "int8"},
                {"name": "text", "type": "text"},
                {"name": "created_at", "type": "timestamptz"},
            ],
            "record": {"id": 46, "text": "new", "created_at": "2025-11-03T09:32:55+00:00"},
            "old_record": RECORD | {"text": "old"},
            "errors": None,
        },
    ),
    (
        "delete, default replica identity",
        {
            "action": "D",
            "timestamp": TS,
            "schema": "public",
            "table": "test",
            "identity": [col("id", 20, 46)],
            "pk": PK,
        },
        {
            "schema": "public",
            "table": "test",
            "type": "DELETE",
            "commit_timestamp": "2025-11-19T00:22:40.877Z",
            "columns": [{"name": "id", "type": "int8"}],
            "old_record": {"id": 46},
            "errors": None,
        },
    ),
    (
        "delete, replica identity full",
        {
            "action": "D",
            "timestamp": TS,
            "schema": "public",
            "table": "test",
            "identity": INSERT["columns"],
            "pk": PK,
        },
        {
            "schema": "public",
            "table": "test",
            "type": "DELETE",
            "commit_timestamp": "2025-11-19T00:22:40.877Z",
            "columns": COLUMNS,
            "old_record": RECORD,
            "errors": None,
        },
    ),
    (
        "insert into a table without primary key: error row",
        {**INSERT, "pk": []},
        {
            "schema": "public",
            "table": "test",
            "type": "INSERT",
            "commit_timestamp": None,
            "columns": [],
            "record": {},
            "errors": [ERROR_NO_PRIMARY_KEY],
        },
    ),
    (
        "update of a table without primary key (replica identity full): error row",
        {**INSERT, "action": "U", "pk": [], "identity": INSERT["columns"]},
        {
            "schema": "public",
            "table": "test",
            "type": "UPDATE",
            "commit_timestamp": None,
            "columns": [],
            "record": {},
            "old_record": {},
            "errors": [ERROR_NO_PRIMARY_KEY],
        },
    ),
    (
        "delete from a table without primary key (replica identity full) is delivered",
        {
            "action": "D",
            "timestamp": TS,
            "schema": "public",
            "table": "test",
            "identity": INSERT["columns"],
            "pk": [],
        },
        {
            "schema": "public",
            "table": "test",
            "type": "DELETE",
            "commit_timestamp": "2025-11-19T00:22:40.877Z",
            "columns": COLUMNS,
            "old_record": RECORD,
            "errors": None,
        },
    ),
    ("truncate is never emitted", {"action": "T", "schema": "public", "table": "test"}, None),
    ("begin", {"action": "B", "timestamp": TS}, None),
    ("commit", {"action": "C", "timestamp": TS}, None),
    ("message", {"action": "M", "transactional": False, "prefix": "p", "content": "x"}, None),
]


@pytest.mark.parametrize(
    ("change", "expected"),
    [pytest.param(change, expected, id=name) for name, change, expected in RECORD_CASES],
)
def test_decode_change(change: dict[str, Any], expected: dict[str, Any] | None) -> None:
    assert decode_change(change) == expected


def test_keys_follow_the_protocol_per_type() -> None:
    shapes = {}
    for name, change, expected in RECORD_CASES:
        if expected is not None and "error" not in name:
            data = decode_change(change)
            assert data is not None
            shapes[data["type"]] = set(data)
    base = {"schema", "table", "type", "commit_timestamp", "columns", "errors"}
    assert shapes == {
        "INSERT": base | {"record"},
        "UPDATE": base | {"record", "old_record"},
        "DELETE": base | {"old_record"},
    }


def test_table_columns_come_from_the_catalog_when_given() -> None:
    delete = {
        "action": "D",
        "timestamp": TS,
        "schema": "public",
        "table": "test",
        "identity": [col("id", 20, 46)],
        "pk": PK,
    }
    table = [("id", "int8"), ("created_at", "timestamptz"), ("text", "text")]
    data = decode_change(delete, table_columns=table)
    assert data is not None
    assert data["columns"] == COLUMNS
    assert data["old_record"] == {"id": 46}


def test_user_types_by_oid() -> None:
    mood = PgType("mood")
    types = {
        **BUILTIN_TYPES,
        16385: mood,
        16386: PgType("_mood", element=mood),
        16390: PgType("posint", base="int4"),
    }
    change = {
        **INSERT,
        "columns": [
            col("id", 20, 1),
            col("m", 16385, "happy"),
            col("ms", 16386, "{sad,happy}"),
            col("p", 16390, "5"),
            col("odd", 99999, "kept", type_="strange"),
        ],
    }
    data = decode_change(change, types)
    assert data is not None
    assert data["columns"] == [
        {"name": "id", "type": "int8"},
        {"name": "m", "type": "mood"},
        {"name": "ms", "type": "_mood"},
        {"name": "p", "type": "posint"},
        {"name": "odd", "type": "strange"},
    ]
    assert data["record"] == {"id": 1, "m": "happy", "ms": ["sad", "happy"], "p": 5, "odd": "kept"}


# --- the 413 rule -------------------------------------------------------------------------


def _json_len(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


def test_oversize_record_drops_fields_over_64_bytes() -> None:
    s62 = "a" * 62  # JSON "…" is 64 bytes: kept
    s63 = "b" * 63  # 65 bytes: dropped
    assert (_json_len(s62), _json_len(s63)) == (64, 65)
    change = {
        **INSERT,
        "action": "U",
        "columns": [col("id", 20, 1), col("keep", 25, s62), col("big", 25, s63)],
        "identity": [col("id", 20, 1), col("keep", 25, s62), col("big", 25, "x" * 5000)],
    }
    data = decode_change(change, max_record_bytes=1000)
    assert data is not None
    assert data["errors"] == [ERROR_PAYLOAD_TOO_LARGE]
    assert data["record"] == {"id": 1, "keep": s62}
    assert data["old_record"] == {"id": 1, "keep": s62}
    assert [c["name"] for c in data["columns"]] == ["id", "keep", "big"]


def test_record_at_the_limit_is_whole() -> None:
    change = {**INSERT, "columns": [col("id", 20, 1), col("big", 25, "x" * 5000)]}
    size = len(json.dumps(change).encode())
    at_limit = decode_change(change, max_record_bytes=size)
    over = decode_change(change, max_record_bytes=size - 1)
    assert at_limit is not None
    assert over is not None
    assert at_limit["errors"] is None
    assert at_limit["record"]["big"] == "x" * 5000
    assert over["errors"] == [ERROR_PAYLOAD_TOO_LARGE]
    assert over["record"] == {"id": 1}


def test_record_bytes_given_by_the_caller_decide() -> None:
    small = decode_change(INSERT, max_record_bytes=100, record_bytes=100)
    large = decode_change(INSERT, max_record_bytes=100, record_bytes=101)
    assert small is not None
    assert large is not None
    assert small["errors"] is None
    assert large["errors"] == [ERROR_PAYLOAD_TOO_LARGE]
    assert large["record"] == RECORD  # nothing over 64 bytes to drop


def test_default_limit_is_one_mebibyte() -> None:
    big = {**INSERT, "columns": [col("id", 20, 1), col("blob", 25, "y" * 1_048_576)]}
    data = decode_change(big)
    assert data is not None
    assert data["errors"] == [ERROR_PAYLOAD_TOO_LARGE]
    assert data["record"] == {"id": 1}


# --- values -------------------------------------------------------------------------------

T = BUILTIN_TYPES
VALUE_CASES: list[tuple[Any, int, Any]] = [
    (46, 20, 46),
    (-3, 21, -3),
    (1.1, 700, 1.1),
    (None, 701, None),  # wal2json writes NaN as null, and so does Supabase
    (2.5, 1700, 2.5),
    (123456789012345678901234567890, 1700, 123456789012345678901234567890),
    (True, 16, True),
    (False, 16, False),
    ('hé"llo', 25, 'hé"llo'),
    ("vc", 1043, "vc"),
    ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ('{"a": 1, "a": 2}', 114, {"a": 2}),
    ('{"b": [1, 2.50]}', 3802, {"b": [1, 2.5]}),
    ('"just a string"', 3802, "just a string"),
    ("null", 3802, None),
    ("0102ff", 17, "0102ff"),
    ("\\x0102ff", 17, "0102ff"),
    ("2025-11-03 09:32:55+00", 1184, "2025-11-03T09:32:55+00:00"),
    ("2025-11-03 09:32:55.123456+05:30", 1184, "2025-11-03T09:32:55.123456+05:30"),
    ("1000-01-01 10:00:00-04:56:02 BC", 1184, "1000-01-01T10:00:00-04:56:02 BC"),
    ("infinity", 1184, "infinity"),
    ("-infinity", 1114, "-infinity"),
    ("2025-11-03 09:32:55.123456", 1114, "2025-11-03T09:32:55.123456"),
    ("2025-11-03", 1082, "2025-11-03"),
    ("09:32:55", 1083, "09:32:55"),
    ("09:32:55+05", 1266, "09:32:55+05:00"),
    ("09:32:55-03:30", 1266, "09:32:55-03:30"),
    ("1 day 02:00:00", 1186, "1 day 02:00:00"),
    ("$1.50", 790, "$1.50"),
    ("(1,2)", 600, "(1,2)"),
    (12, 26, "12"),  # wal2json writes oid as a number; to_jsonb gives a string
    ('{"a b",NULL,"c\\"d","x,y"}', 1009, ["a b", None, 'c"d', "x,y"]),
    ("{{1,2},{3,4}}", 1007, [[1, 2], [3, 4]]),
    ("[0:1]={1.5,NaN}", 1231, [1.5, "NaN"]),
    ("{}", 1007, []),
    ("{t,f,NULL}", 1000, [True, False, None]),
    ('{"{\\"x\\": 1}"}', 3807, [{"x": 1}]),
    ('{"2025-11-03 04:32:55+00"}', 1185, ["2025-11-03T04:32:55+00:00"]),
    ('{"\\\\x0102"}', 1001, ["0102"]),
    ('{"NULL",NULL}', 1009, ["NULL", None]),
    ("{ab}", 1009, ["ab"]),
]


@pytest.mark.parametrize(("value", "oid", "expected"), VALUE_CASES)
def test_convert_value(value: Any, oid: int, expected: Any) -> None:
    assert convert_value(value, T[oid]) == expected


def test_domain_over_numeric_keeps_nan_as_string() -> None:
    # wal2json prints a domain's value as text; to_jsonb turns NaN into the string "NaN".
    domain = PgType("price", base="numeric")
    assert convert_value("NaN", domain) == "NaN"
    assert convert_value("12.50", domain) == 12.5
    assert convert_value("12", domain) == 12


def test_box_arrays_split_on_semicolons() -> None:
    box = PgType("box", delimiter=";")
    assert parse_array("{(1,1),(0,0);(2,2),(1,1)}", box, ";") == ["(1,1),(0,0)", "(2,2),(1,1)"]


@pytest.mark.parametrize("text", ["", "1,2", "{1,2", "{1,2}x", "[0:1]{1,2}"])
def test_parse_array_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="array literal"):
        parse_array(text, T[23])


def test_non_array_text_in_an_array_column_stays_text() -> None:
    int2vector = PgType("int2vector", element=T[21])
    assert convert_value("1 2 3", int2vector) == "1 2 3"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-19 00:22:40.877123+00", "2025-11-19T00:22:40.877Z"),
        ("2025-11-19 00:22:40.877999+00", "2025-11-19T00:22:40.877Z"),  # truncated, like MS
        ("2025-11-19 00:22:40+00", "2025-11-19T00:22:40.000Z"),
        ("2025-11-19 00:22:40.5+00", "2025-11-19T00:22:40.500Z"),
        ("2025-11-18 19:22:40.877123-05", "2025-11-19T00:22:40.877Z"),
        ("2025-11-19 05:52:40.877123+05:30", "2025-11-19T00:22:40.877Z"),
    ],
)
def test_commit_timestamp(text: str, expected: str) -> None:
    assert commit_timestamp(text) == expected
