"""Postgres value casts and operators used by filter matching."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supa_realtime.phoenix import pg_values as pg

# Machines are noisy: no example is timed.
NO_DEADLINE = settings(deadline=None)

CASTS: list[tuple[str, str, Any]] = [
    (" 42 ", "int4", 42),
    ("-32768", "int2", -32768),
    ("9223372036854775807", "int8", 2**63 - 1),
    ("1.50", "numeric", (0, Decimal("1.5"))),
    ("NaN", "numeric", (1, 0)),
    ("nan", "float8", (1, 0)),
    ("Infinity", "float8", (0, float("inf"))),
    ("yes", "bool", True),
    ("F", "bool", False),
    ("of", "bool", False),
    ("ab  ", "bpchar", "ab"),
    ("MiXeD", "citext", "mixed"),
    ("as is", "text", "as is"),
    ("as is", "some_enum", "as is"),
    ("2025-11-03 09:32:55+00", "timestamptz", (0, datetime(2025, 11, 3, 9, 32, 55, tzinfo=UTC))),
    ("2025-11-03T09:32:55", "timestamptz", (0, datetime(2025, 11, 3, 9, 32, 55, tzinfo=UTC))),
    ("2025-11-03T09:32:55+03:00", "timestamp", (0, datetime(2025, 11, 3, 9, 32, 55))),
    ("2025-11-03", "date", (0, date(2025, 11, 3))),
    ("infinity", "date", (1,)),
    ("-infinity", "timestamptz", (-1,)),
    (
        "{8C1F0D0E-0000-4000-8000-00000000000A}",
        "uuid",
        uuid.UUID(int=0x8C1F0D0E000040008000_00000000000A),
    ),
    ('{"b":1, "a":[2]}', "jsonb", b'{"a":[2],"b":1}'),
    ("{1,NULL}", "_int4", ((1, 1), (0,))),
]


@pytest.mark.parametrize(("text", "type_", "value"), CASTS)
def test_cast(text: str, type_: str, value: Any) -> None:
    assert pg.cast(text, type_) == value


BAD_CASTS = [
    ("1.5", "int4"),
    ("32768", "int2"),
    ("x", "int8"),
    ("", "numeric"),
    ("1e", "float8"),
    ("1e39", "float4"),
    ("o", "bool"),
    ("maybe", "bool"),
    ("yesterday-ish", "timestamptz"),
    ("2025-13-01", "date"),
    ("not-a-uuid", "uuid"),
    ("{", "jsonb"),
    ("{1,,2}", "_int4"),
    ("{a}", "_int4"),
    ("[1, 2]", "_int4"),
]


@pytest.mark.parametrize(("text", "type_"), BAD_CASTS)
def test_cast_refuses(text: str, type_: str) -> None:
    with pytest.raises(pg.CastError):
        pg.cast(text, type_)


ARRAYS: list[tuple[str, tuple[str | None, ...]]] = [
    ("{}", ()),
    ("{ }", ()),
    ("{a}", ("a",)),
    ("{ a , b }", ("a", "b")),
    ("{a b,c}", ("a b", "c")),
    ('{"a,b","c\\"d"}', ("a,b", 'c"d')),
    ('{"",x}', ("", "x")),
    ('{NULL,null,"NULL",\\NULL}', (None, None, "NULL", "NULL")),
    ("{a\\,b}", ("a,b",)),
]


@pytest.mark.parametrize(("literal", "items"), ARRAYS)
def test_parse_array_literal(literal: str, items: tuple[str | None, ...]) -> None:
    assert pg.parse_array_literal(literal) == items


@pytest.mark.parametrize("literal", ["", "a", "{", "{a", "{,}", "{a,}", '{"a}', "{{1}}", "{a\\}"])
def test_parse_array_literal_refuses(literal: str) -> None:
    with pytest.raises(pg.CastError, match="malformed array literal"):
        pg.parse_array_literal(literal)


@NO_DEADLINE
@given(st.lists(st.text(), max_size=8))
def test_quoted_array_literal_round_trips(items: list[str]) -> None:
    quoted = ['"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items]
    assert pg.parse_array_literal("{" + ",".join(quoted) + "}") == tuple(items)


RECORD_TEXT: list[tuple[Any, str | None]] = [
    (None, None),
    ("x", "x"),
    (True, "true"),
    (False, "false"),
    (46, "46"),
    (1.5, "1.5"),
    ({"a": 1}, '{"a":1}'),
    ([1, 2], "[1,2]"),
]


@pytest.mark.parametrize(("value", "text"), RECORD_TEXT)
def test_record_text(value: Any, text: str | None) -> None:
    assert pg.record_text(value) == text


LIKES = [
    ("a%", False, "abc", True),
    ("a%", False, "bac", False),
    ("_b_", False, "abc", True),
    ("_b_", False, "abcd", False),
    ("a.c", False, "abc", False),
    ("a\\%", False, "a%", True),
    ("a\\_", False, "ab", False),
    ("A%", True, "abc", True),
    ("(x)[y]*", False, "(x)[y]*", True),
]


@pytest.mark.parametrize(("pattern", "insensitive", "text", "expected"), LIKES)
def test_like(pattern: str, insensitive: bool, text: str, expected: bool) -> None:
    regex = pg.like_regex(pattern, insensitive)
    assert regex is not None
    assert (regex.fullmatch(text) is not None) is expected


def test_like_refuses_a_trailing_escape() -> None:
    assert pg.like_regex("abc\\", False) is None


REGEXES = [
    ("^[[:digit:]]+$", "123", True),
    ("^[[:alpha:]_]+$", "ab_c", True),
    ("[[:space:]]", "nospace", False),
    ("\\mcat\\M", "a cat here", True),
    ("\\ycat\\y", "concat", False),
    # Postgres's own meanings where Python's differ
    ("^a$", "a\n", False),  # $ is the very end
    (".", "\n", True),  # . matches a newline
    ("\\Bx", "\\x", True),  # \B is a backslash
    ("b\\b", "b\x08", True),  # \b is a backspace
    ("a{,2}", "a{,2}", True),  # a brace not followed by a digit is literal
    ("a{2,}", "aaa", True),
    ("a*?b", "ab", True),
    ("]??", "", True),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), REGEXES)
def test_posix_regex(pattern: str, text: str, expected: bool) -> None:
    assert (pg.posix_regex(pattern, False).search(text) is not None) is expected


@pytest.mark.parametrize(
    "pattern",
    ["a{2", "a{300}", "a{3,1}", "a*+", "a**", "a+?+", "[[:nope:]]", "[abc", "a\\", "[\\2]", "(a"],
)
def test_posix_regex_refuses_what_postgres_refuses(pattern: str) -> None:
    with pytest.raises(re.error):
        pg.posix_regex(pattern, False)


def test_compare() -> None:
    assert pg.compare("lt", 1, 2) is True
    assert pg.compare("gte", 1, 2) is False
    assert pg.compare("lt", 1, "x") is None
    with pytest.raises(ValueError, match="not a comparison operator"):
        pg.compare("like", 1, 2)
