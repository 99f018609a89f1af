"""postgres_changes bindings and filters against the server's semantics (PROTOCOL.md §4)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from supa_realtime.exceptions import BindingError, RealtimeError
from supa_realtime.phoenix.filters import (
    OPERATORS,
    Binding,
    Condition,
    binding_id,
    event_matches,
    matches,
    matching_ids,
    parse_binding,
    parse_filter,
)
from supa_realtime.phoenix.pg_values import record_text

# Machines are noisy: no example is timed.
NO_DEADLINE = settings(deadline=None)

C = Condition

# --- filter grammar -----------------------------------------------------------------------

PARSED = [
    ("", ()),
    ("   ", ()),
    ("id=eq.1", (C("id", "eq", "1"),)),
    ("subject=eq.hey", (C("subject", "eq", "hey"),)),
    ("id=neq.1", (C("id", "neq", "1"),)),
    ("id=lt.1", (C("id", "lt", "1"),)),
    ("id=lte.1", (C("id", "lte", "1"),)),
    ("id=gt.0,id=lt.100", (C("id", "gt", "0"), C("id", "lt", "100"))),
    ("id=gte.1", (C("id", "gte", "1"),)),
    ("subject=in.(hidee,ho)", (C("subject", "in", ("hidee", "ho")),)),
    ("id=in.()", (C("id", "in", ()),)),
    ("id=in.( 1 , 2 )", (C("id", "in", ("1", "2")),)),
    ('n=in.("a,b",c,"d\\"e","f\\\\g")', (C("n", "in", ("a,b", "c", 'd"e', "f\\g")),)),
    ("n=in.(1,NULL,null)", (C("n", "in", ("1",), in_null=True),)),
    ('n=in.(1,"NULL")', (C("n", "in", ("1", "NULL")),)),
    ("name=like.Jo%", (C("name", "like", "Jo%"),)),
    ("name=ilike.jo_n", (C("name", "ilike", "jo_n"),)),
    ("name=match.^J[a-z]+$", (C("name", "match", "^J[a-z]+$"),)),
    ("name=imatch.^j", (C("name", "imatch", "^j"),)),
    ("done=is.null", (C("done", "is", "null"),)),
    ("done=is.true", (C("done", "is", "true"),)),
    ("done=is.false", (C("done", "is", "false"),)),
    ("done=is.unknown", (C("done", "is", "unknown"),)),
    ("a=isdistinct.1", (C("a", "isdistinct", "1"),)),
    ("status=not.in.(draft,archived)", (C("status", "in", ("draft", "archived"), True),)),
    ("subject=not.like.hey%", (C("subject", "like", "hey%", True),)),
    ("done=not.is.null", (C("done", "is", "null", True),)),
    ("id=not.eq.5", (C("id", "eq", "5", True),)),
    # values keep dots and equals signs after the first ones
    ("v=eq.1.5", (C("v", "eq", "1.5"),)),
    ("v=eq.a=b", (C("v", "eq", "a=b"),)),
    ("v=eq.", (C("v", "eq", ""),)),
    # double quotes protect commas, parentheses and surrounding blanks
    ('name=eq."a,b",id=in.(1,2)', (C("name", "eq", "a,b"), C("id", "in", ("1", "2")))),
    ('name=eq." padded "', (C("name", "eq", " padded "),)),
    ('name=eq."(x)"', (C("name", "eq", "(x)"),)),
    ('name=eq."say \\"hi\\""', (C("name", "eq", 'say "hi"'),)),
    ('name=eq."back\\\\slash"', (C("name", "eq", "back\\slash"),)),
    # a malformed quoted value is kept as written, as the server does
    ('name=eq."open', (C("name", "eq", '"open'),)),
    ('name=eq."a"b"', (C("name", "eq", '"a"b"'),)),
    # a quote not after '.', '(' or ',' opens nothing: the comma splits
    ('name=eq.a"b,c=eq.1', (C("name", "eq", 'a"b'), C("c", "eq", "1"))),
    # commas inside parentheses never split
    ("v=eq.(a,b)", (C("v", "eq", "(a,b)"),)),
    # blanks around segments go; the column keeps what is left of '='
    ("  id=eq.1 ,  x=eq.2  ", (C("id", "eq", "1"), C("x", "eq", "2"))),
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_parse_filter(text: str, expected: tuple[Condition, ...]) -> None:
    assert parse_filter(text) == expected


FILTER_ERRORS = [
    ("subject=foo.hey", '["foo", "hey"]'),
    ("subject=fts.hey", '["fts", "hey"]'),
    ("undefined", '["undefined"]'),
    ("wrong", '["wrong"]'),
    ("id=eq", '["eq"]'),
    ("id=not.eq", '["eq"]'),
    ("id=not.foo.1", '["foo", "1"]'),
    ("id=not", '["not"]'),
    ('id=x."q"', '["x", "\\"q\\""]'),
    ("id=in.1,2", "`in` filter value must be wrapped by parentheses"),
    ("id=in.(1,2", "`in` filter value must be wrapped by parentheses"),
    ("id=not.in.1", "`in` filter value must be wrapped by parentheses"),
    ("id=eq.1,,id=eq.2", "filter must not contain empty segments (check for extra commas)"),
    ("id=eq.1,", "filter must not contain empty segments (check for extra commas)"),
    (",id=eq.1", "filter must not contain empty segments (check for extra commas)"),
    # the first bad segment wins
    ("a=foo.1,b", '["foo", "1"]'),
]


@pytest.mark.parametrize(("text", "reason"), FILTER_ERRORS)
def test_parse_filter_errors(text: str, reason: str) -> None:
    with pytest.raises(BindingError) as info:
        parse_filter(text)
    assert info.value.message == "Error parsing `filter` params: " + reason
    assert str(info.value) == info.value.message
    assert isinstance(info.value, RealtimeError)


def test_every_operator_parses() -> None:
    values = {"in": "(1)", "is": "null"}
    for op in sorted(OPERATORS):
        (cond,) = parse_filter(f"c={op}.{values.get(op, '1')}")
        assert cond.op == op
        (negated,) = parse_filter(f"c=not.{op}.{values.get(op, '1')}")
        assert negated.negate
        assert negated.op == op


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@NO_DEADLINE
@given(st.text())
def test_quoted_value_round_trips(value: str) -> None:
    (cond,) = parse_filter("name=eq." + _quote(value))
    assert cond == C("name", "eq", value)


@NO_DEADLINE
@given(st.lists(st.text(), max_size=5), st.text())
def test_quoted_in_list_round_trips(items: list[str], other: str) -> None:
    text = f"n=in.({','.join(_quote(i) for i in items)}),o=neq.{_quote(other)}"
    assert parse_filter(text) == (C("n", "in", tuple(items)), C("o", "neq", other))


@NO_DEADLINE
@given(st.text(alphabet='ab=.,()"\\ notinqlk'))
def test_parse_filter_raises_only_binding_error(text: str) -> None:
    message = ""
    conditions: tuple[Condition, ...] = ()
    try:
        conditions = parse_filter(text)
    except BindingError as exc:
        message = exc.message
    if message:
        assert message.startswith(("Error parsing `filter` params: ", "ERROR "))
    else:
        assert bool(conditions) == bool(text.strip())
        assert all(cond.op in OPERATORS for cond in conditions)


# --- bindings -----------------------------------------------------------------------------

SHAPES: list[tuple[dict[str, Any], tuple[str, str, str, tuple[str, ...] | None]]] = [
    ({"event": "*", "schema": "public", "table": "todos"}, ("*", "public", "todos", None)),
    ({"event": "INSERT", "schema": "public", "table": "t"}, ("INSERT", "public", "t", None)),
    ({"event": "update", "schema": "public", "table": "t"}, ("UPDATE", "public", "t", None)),
    ({"event": "Delete", "schema": "public", "table": "t"}, ("DELETE", "public", "t", None)),
    ({"event": "TRUNCATE", "schema": "public", "table": "t"}, ("*", "public", "t", None)),
    ({"event": 1, "schema": "public", "table": "t"}, ("*", "public", "t", None)),
    ({"events": "INSERT", "schema": "public", "table": "t"}, ("*", "public", "t", None)),
    ({"schema": "public"}, ("*", "public", "*", None)),
    ({"table": "messages"}, ("*", "public", "messages", None)),
    ({"schema": "*", "table": "*"}, ("*", "*", "*", None)),
    ({"schema": "public", "table": "t", "filter": ""}, ("*", "public", "t", None)),
    (
        {"schema": "public", "table": "t", "select": ["id", 3, "title"]},
        ("*", "public", "t", ("id", "title")),
    ),
    ({"schema": "public", "table": "t", "select": []}, ("*", "public", "t", ())),
    ({"schema": "public", "table": "t", "select": None}, ("*", "public", "t", None)),
    # tokens in the params do not matter when schema/table are there
    ({"schema": "public", "user_token": "x"}, ("*", "public", "*", None)),
]


@pytest.mark.parametrize(("params", "expected"), SHAPES)
def test_parse_binding_shapes(
    params: dict[str, Any], expected: tuple[str, str, str, tuple[str, ...] | None]
) -> None:
    binding = parse_binding(params)
    assert (binding.event, binding.schema, binding.table, binding.select) == expected
    assert binding.params is params
    assert binding.id == binding_id(params)
    assert binding.reply_entry() == {**params, "id": binding.id}


NO_PARAMS = (
    "No subscription params provided. Please provide at least a `schema` or `table` to "
    "subscribe to: "
)
UNABLE = (
    "Unable to subscribe to changes with given parameters. An exception happened so please "
    "check your connect parameters: "
)

SELECT_ERROR = (
    "Error parsing `select` params: expected a list of column name strings, "
    'e.g. select: ["col1", "col2"]'
)

BINDING_ERRORS: list[tuple[Any, str]] = [
    ({}, NO_PARAMS + "%{}"),
    ({"event": "*"}, NO_PARAMS + '%{"event" => "*"}'),
    ({"table": None}, NO_PARAMS + '%{"table" => nil}'),
    ({"schema": "public", "table": None}, NO_PARAMS + '%{"schema" => "public", "table" => nil}'),
    (
        {"schema": "public", "filter": "id=eq.1"},
        NO_PARAMS + '%{"filter" => "id=eq.1", "schema" => "public"}',
    ),
    (
        {"table": "t", "schema": "public", "filter": None, "n": 1.5, "l": [1, True, "a"]},
        NO_PARAMS + '%{"filter" => nil, "l" => [1, true, "a"], "n" => 1.5, '
        '"schema" => "public", "table" => "t"}',
    ),
    ({"schema": 1}, NO_PARAMS + '%{"schema" => 1}'),
    ({"user_token": "secret"}, NO_PARAMS + "<redacted>"),
    ({"auth_token": "secret", "table": 1}, NO_PARAMS + "<redacted>"),
    ("public", NO_PARAMS + '"public"'),
    (
        {"schema": "public", "table": "t", "select": "id"},
        SELECT_ERROR,
    ),
    (
        {"schema": "public", "select": ["a"]},
        "Column selection is not supported for wildcard subscriptions. Provide an explicit "
        "schema and table name.",
    ),
    (
        {"schema": "public", "table": "*", "select": []},
        "Column selection is not supported for wildcard subscriptions. Provide an explicit "
        "schema and table name.",
    ),
    (
        {"schema": "public", "table": "t", "filter": "subject=foo.hey"},
        'Error parsing `filter` params: ["foo", "hey"]',
    ),
    # the select error comes before a filter error, a filter error before the wildcard check
    (
        {"schema": "public", "table": "t", "filter": "x", "select": "a"},
        SELECT_ERROR,
    ),
    (
        {"schema": "*", "table": "t", "filter": "x", "select": ["a"]},
        'Error parsing `filter` params: ["x"]',
    ),
    (
        {"schema": "public", "table": "t", "filter": "b=is.maybe"},
        UNABLE + '[event: *, schema: public, table: t, filters: [{"b", "is", "maybe", false}], '
        "select: nil]. "
        "Exception: ERROR P0001 (raise_exception) invalid value for is filter: must be null, "
        "true, false, or unknown",
    ),
    (
        {
            "event": "INSERT",
            "schema": "public",
            "table": "t",
            "filter": "id=in.(1,,2)",
            "select": ["id"],
        },
        UNABLE
        + '[event: INSERT, schema: public, table: t, filters: [{"id", "in", "{1,,2}", false}], '
        'select: ["id"]]. Exception: ERROR 22P02 (invalid_text_representation) malformed array '
        'literal: "{1,,2}"',
    ),
]


@pytest.mark.parametrize(("params", "message"), BINDING_ERRORS)
def test_parse_binding_errors(params: Any, message: str) -> None:
    with pytest.raises(BindingError) as info:
        parse_binding(params)
    assert info.value.message == message


def test_too_many_in_values_pretty_prints_the_filters_as_the_server() -> None:
    values = ",".join(str(n) for n in range(101))
    params = {"schema": "public", "table": "t", "filter": f"name=eq.x,id=not.in.({values})"}
    with pytest.raises(BindingError) as info:
        parse_binding(params)
    assert info.value.message == (
        UNABLE + "[event: *, schema: public, table: t, filters: [\n"
        '  {"name", "eq", "x", false},\n'
        '  {"id", "in",\n'
        f'   "{{{values}}}",\n'
        "   true}\n"
        "], select: nil]. Exception: ERROR P0001 (raise_exception) too many values for `in` "
        "filter. Maximum 100"
    )
    # exactly 100 is fine, NULLs count
    hundred = ",".join(["NULL"] + [str(n) for n in range(99)])
    binding = parse_binding({"schema": "public", "table": "t", "filter": f"id=in.({hundred})"})
    assert binding.conditions[0].in_null


def test_bad_regular_expression_is_refused() -> None:
    with pytest.raises(BindingError) as info:
        parse_binding({"schema": "public", "table": "t", "filter": "t=imatch.(a"})
    assert info.value.message.startswith(
        UNABLE + '[event: *, schema: public, table: t, filters: [{"t", "imatch", "(a", false}], '
        "select: nil]. Exception: ERROR P0001 (raise_exception) invalid regular expression for "
        "imatch filter: invalid regular expression: "
    )


def test_binding_id_is_stable_and_in_range() -> None:
    # Pinned values: ids must not change between processes, machines or releases.
    assert binding_id({"event": "*", "schema": "public", "table": "test"}) == 72420027
    assert binding_id({}) == 27576126
    a = {"event": "*", "schema": "public", "table": "test", "filter": "id=eq.1"}
    b = {"filter": "id=eq.1", "table": "test", "schema": "public", "event": "*"}
    assert binding_id(a) == binding_id(b)
    assert binding_id(a) != binding_id({**a, "filter": "id=eq.2"})


@NO_DEADLINE
@given(st.dictionaries(st.text(max_size=8), st.none() | st.booleans() | st.integers() | st.text()))
def test_binding_id_range(params: dict[str, Any]) -> None:
    assert 0 <= binding_id(params) < 2**27
    assert binding_id(dict(reversed(list(params.items())))) == binding_id(params)


def test_binding_is_frozen() -> None:
    binding = parse_binding({"schema": "public"})
    with pytest.raises(AttributeError):
        binding.table = "x"  # type: ignore[misc]


# --- matching -----------------------------------------------------------------------------


def change(
    type_: str = "INSERT",
    record: dict[str, Any] | None = None,
    columns: dict[str, str] | None = None,
    old_record: dict[str, Any] | None = None,
    schema: str = "public",
    table: str = "t",
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema": schema,
        "table": table,
        "commit_timestamp": "2025-11-19T00:22:40.877Z",
        "type": type_,
        "columns": [{"name": k, "type": v} for k, v in (columns or {}).items()],
        "errors": None,
    }
    if record is not None:
        data["record"] = record
    if old_record is not None:
        data["old_record"] = old_record
    return data


def binding(filter_: str = "", **params: Any) -> Binding:
    base: dict[str, Any] = {"event": "*", "schema": "public", "table": "t"}
    if filter_:
        base["filter"] = filter_
    return parse_binding({**base, **params})


# (filter, column type, record value, expected)
MATCHES: list[tuple[str, str, Any, bool]] = [
    # integers compare numerically, not as text
    ("v=eq.1", "int4", 1, True),
    ("v=eq.01", "int4", 1, True),
    ("v=eq. 1 ", "int8", 1, True),
    ("v=eq.2", "int4", 1, False),
    ("v=neq.2", "int4", 1, True),
    ("v=lt.10", "int8", 9, True),
    ("v=lt.10", "int8", 10, False),
    ("v=lte.10", "int2", 10, True),
    ("v=gt.9", "int4", 10, True),
    ("v=gt.10", "int4", 10, False),
    ("v=gte.10", "int4", 10, True),
    ("v=eq.1.5", "int4", 1, False),  # not an integer: no match
    ("v=eq.99999999999", "int4", 1, False),  # out of range
    # numeric and floats
    ("v=eq.1.50", "numeric", 1.5, True),
    ("v=eq.1.5", "numeric", "1.50", True),
    ("v=gt.2", "numeric", 10, True),
    ("v=lt.0.1", "float8", 0.05, True),
    ("v=eq.0.1", "float4", 0.1, True),
    ("v=eq.NaN", "float8", "NaN", True),
    ("v=gt.1e308", "float8", "NaN", True),
    ("v=gt.1", "numeric", "NaN", True),
    ("v=eq.abc", "numeric", 1, False),
    # booleans, with boolin's spellings
    ("v=eq.true", "bool", True, True),
    ("v=eq.t", "bool", True, True),
    ("v=eq.yes", "bool", True, True),
    ("v=eq.on", "bool", True, True),
    ("v=eq.0", "bool", False, True),
    ("v=eq.OFF", "bool", False, True),
    ("v=eq.o", "bool", False, False),  # ambiguous
    ("v=lt.true", "bool", False, True),
    ("v=neq.true", "bool", False, True),
    # text compares as strings (so "10" < "9")
    ("v=eq.hello", "text", "hello", True),
    ("v=eq.Hello", "text", "hello", False),
    ("v=lt.9", "text", "10", True),
    ("v=eq.(a,b)", "varchar", "(a,b)", True),  # parentheses keep the comma
    ('v=eq."a,b"', "varchar", "a,b", True),
    ("v=eq.ab", "bpchar", "ab   ", True),
    ("v=eq.HeLLo", "citext", "hello", True),
    # timestamps and dates compare as instants
    ("v=eq.2025-11-03T09:32:55Z", "timestamptz", "2025-11-03T09:32:55+00:00", True),
    ("v=eq.2025-11-03 10:32:55+01", "timestamptz", "2025-11-03T09:32:55+00:00", True),
    ("v=eq.2025-11-03T09:32:55", "timestamptz", "2025-11-03T09:32:55.000+00:00", True),
    ("v=gt.2025-11-03T09:00:00Z", "timestamptz", "2025-11-03T09:32:55+00:00", True),
    ("v=lt.2025-11-03T09:00:00-01:00", "timestamptz", "2025-11-03T09:32:55+00:00", True),
    ("v=eq.2025-11-03 09:32:55+05", "timestamp", "2025-11-03T09:32:55", True),
    ("v=gte.2025-01-01", "date", "2025-11-03", True),
    ("v=lt.infinity", "date", "2025-11-03", True),
    ("v=gt.-infinity", "timestamptz", "2025-11-03T09:32:55+00:00", True),
    ("v=eq.12:00", "time", "12:00:00", True),
    ("v=eq.not-a-date", "timestamptz", "2025-11-03T09:32:55+00:00", False),
    # uuids compare canonically
    (
        "v=eq.8C1F0D0E-0000-4000-8000-00000000000A",
        "uuid",
        "8c1f0d0e-0000-4000-8000-00000000000a",
        True,
    ),
    (
        "v=eq.{8c1f0d0e00004000800000000000000a}",
        "uuid",
        "8c1f0d0e-0000-4000-8000-00000000000a",
        True,
    ),
    # json compares as values
    ('v=eq."{\\"b\\": [1, 2], \\"a\\": 1}"', "jsonb", {"a": 1, "b": [1, 2]}, True),
    ('v=eq.{"a": 2}', "jsonb", {"a": 1}, False),
    # arrays: the server casts the record's JSON text ("[1, 2, 3]") to the array type,
    # which Postgres refuses, so a filter on an array column never matches
    ('v=eq."{1,2,3}"', "_int4", [1, 2, 3], False),
    ('v=eq."{a,\\"b c\\"}"', "_text", ["a", "b c"], False),
    ("v=eq.{1}", "_int4", [1], False),
    ("v=is.null", "_int4", None, True),
    ("v=not.is.null", "_int4", [1], False),
    # enums and other types compare as text
    ("v=eq.happy", "mood", "happy", True),
    # in
    ("v=in.(1,2,3)", "int4", 2, True),
    ("v=in.(1,2,3)", "int4", 4, False),
    ("v=in.(01,2)", "int8", 1, True),
    ('v=in.("a,b",c)', "text", "a,b", True),
    ("v=in.()", "text", "a", False),
    ("v=not.in.(draft,archived)", "text", "published", True),
    ("v=not.in.(draft,archived)", "text", "draft", False),
    ("v=in.(1,NULL)", "int4", 1, True),
    ("v=in.(1,NULL)", "int4", 2, False),
    ("v=not.in.(1,NULL)", "int4", 2, False),  # NOT (unknown) is unknown
    ("v=in.(a,b)", "int4", 1, False),
    # like / ilike
    ("v=like.Jo%", "text", "John", True),
    ("v=like.Jo%", "text", "john", False),
    ("v=like.J_hn", "text", "John", True),
    ("v=like.J_hn", "text", "Jhn", False),
    ("v=like.100\\%", "text", "100%", True),
    ("v=like.100\\%", "text", "1000", False),
    ("v=like.a.c", "text", "abc", False),  # '.' is literal
    ("v=like.%", "text", "multi\nline", True),
    ("v=ilike.jo%", "text", "JOHN", True),
    ("v=not.like.Jo%", "text", "Mary", True),
    ("v=like.1%", "int4", 10, False),  # no LIKE on integers
    # match / imatch (regular expressions, unanchored)
    ("v=match.^J[a-z]+$", "text", "John", True),
    ("v=match.oh", "text", "John", True),
    ("v=match.^oh", "text", "John", False),
    ("v=match.^[[:upper:]]", "text", "John", True),
    ("v=imatch.^JOHN$", "text", "john", True),
    ("v=not.match.^J", "text", "John", False),
    # is
    ("v=is.null", "text", None, True),
    ("v=is.null", "text", "x", False),
    ("v=not.is.null", "text", "x", True),
    ("v=not.is.null", "text", None, False),
    ("v=is.unknown", "bool", None, True),
    ("v=is.true", "bool", True, True),
    ("v=is.true", "bool", None, False),
    ("v=is.false", "bool", False, True),
    ("v=not.is.true", "bool", None, True),
    ("v=not.is.true", "bool", False, True),
    ("v=is.true", "text", "true", False),  # only on boolean columns
    # isdistinct is null-safe
    ("v=isdistinct.1", "int4", 2, True),
    ("v=isdistinct.1", "int4", 1, False),
    ("v=isdistinct.1", "int4", None, True),
    ("v=not.isdistinct.1", "int4", 1, True),
    ("v=not.isdistinct.1", "int4", None, False),
    # NULL compares as unknown, and NOT unknown is still unknown
    ("v=eq.1", "int4", None, False),
    ("v=neq.1", "int4", None, False),
    ("v=not.eq.1", "int4", None, False),
    ("v=like.%", "text", None, False),
    ("v=in.(1)", "int4", None, False),
]


@pytest.mark.parametrize(("filter_", "type_", "value", "expected"), MATCHES)
def test_matches_operator(filter_: str, type_: str, value: Any, expected: bool) -> None:
    data = change(record={"id": 1, "v": value}, columns={"id": "int8", "v": type_})
    assert matches(binding(filter_), data) is expected


_SQL_OPERATORS = {
    "eq": "=",
    "neq": "!=",
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
    "like": "LIKE",
    "ilike": "ILIKE",
    "match": "~",
    "imatch": "~*",
}


def _array_literal(cond: Condition) -> str:
    quoted = ['"' + e.replace("\\", "\\\\").replace('"', '\\"') + '"' for e in cond.value]
    return "{" + ",".join(quoted + (["NULL"] if cond.in_null else [])) + "}"


def _postgres_says(conn: psycopg.Connection[Any], cond: Condition, value: Any, type_: str) -> bool:
    """Whether Postgres lets the row through: the operator on both values cast to the type."""
    negate = "NOT " if cond.negate else ""
    params: tuple[Any, ...]
    if cond.op == "isdistinct":
        query = f"select %s::{type_} IS {negate}DISTINCT FROM %s::{type_}"
        params = (record_text(value), cond.value)
    elif cond.op == "is":
        query = f"select %s::{type_} IS {negate}{str(cond.value).upper()}"
        params = (record_text(value),)
    elif cond.op == "in":
        query = f"select {negate}(%s::{type_} = any(%s::{type_}[]))"
        params = (record_text(value), _array_literal(cond))
    else:
        query = f"select {negate}(%s::{type_} {_SQL_OPERATORS[cond.op]} (%s::{type_}))"
        params = (record_text(value), cond.value)
    try:
        row = conn.execute(query.encode(), params).fetchone()
    except psycopg.Error:
        return False  # the server refuses such a subscription: nothing is delivered
    assert row is not None
    return row[0] is True


def test_matches_agree_with_postgres(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("set timezone = 'UTC'")
        conn.execute("create type mood as enum ('sad', 'happy')")
        has_citext = True
        try:
            conn.execute("create extension citext")
        except psycopg.Error:
            has_citext = False
        checked = 0
        for filter_, type_, value, expected in MATCHES:
            if type_ == "citext" and not has_citext:
                continue
            (cond,) = parse_filter(filter_)
            assert _postgres_says(conn, cond, value, type_) is expected, (filter_, type_, value)
            checked += 1
        assert checked >= len(MATCHES) - 1


_like_text = st.text(alphabet="aAb%_\\\n", max_size=6)
_numeric = st.decimals(
    allow_nan=False, allow_infinity=False, places=3, min_value=-1000, max_value=1000
)


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60, deadline=None
)
@given(
    op=st.sampled_from(["like", "ilike", "match", "imatch"]),
    negate=st.booleans(),
    pattern=_like_text,
    text=_like_text,
)
def test_text_patterns_agree_with_postgres(
    postgres_dsn: str, op: str, negate: bool, pattern: str, text: str
) -> None:
    # A LIKE pattern ending in a lone escape fails in Postgres only once matching reaches
    # it; we treat it as refused outright (Postgres would also fail the whole WAL batch).
    trailing_escapes = len(pattern) - len(pattern.rstrip("\\"))
    assume(op not in ("like", "ilike") or trailing_escapes % 2 == 0)
    cond = Condition("v", op, pattern, negate)
    b = Binding({}, 1, "*", "public", "t", (cond,), None)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        expected = _postgres_says(conn, cond, text, "text")
    assert matches(b, change(record={"v": text}, columns={"v": "text"})) is expected


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60, deadline=None
)
@given(
    op=st.sampled_from(["eq", "neq", "lt", "lte", "gt", "gte"]),
    type_=st.sampled_from(["numeric", "float8", "int8"]),
    left=_numeric,
    right=_numeric,
)
def test_numbers_agree_with_postgres(
    postgres_dsn: str, op: str, type_: str, left: Any, right: Any
) -> None:
    record_value = int(left) if type_ == "int8" else float(left) if type_ == "float8" else str(left)
    cond = Condition("v", op, str(right))
    b = Binding({}, 1, "*", "public", "t", (cond,), None)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        expected = _postgres_says(conn, cond, record_value, type_)
    assert matches(b, change(record={"v": record_value}, columns={"v": type_})) is expected


@NO_DEADLINE
@given(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1))
def test_integer_comparisons_agree_with_python(a: int, b: int) -> None:
    data = change(record={"v": a}, columns={"v": "int8"})
    for op, expected in [
        ("eq", a == b),
        ("neq", a != b),
        ("lt", a < b),
        ("lte", a <= b),
        ("gt", a > b),
        ("gte", a >= b),
    ]:
        assert matches(binding(f"v={op}.{b}"), data) is expected
        assert matches(binding(f"v=not.{op}.{b}"), data) is not expected


def test_conditions_are_anded() -> None:
    b = binding("id=gt.0,id=lt.100,name=eq.x")
    columns = {"id": "int8", "name": "text"}
    assert matches(b, change(record={"id": 5, "name": "x"}, columns=columns))
    assert not matches(b, change(record={"id": 500, "name": "x"}, columns=columns))
    assert not matches(b, change(record={"id": 5, "name": "y"}, columns=columns))


def test_column_without_a_type_compares_as_text() -> None:
    data = change(record={"v": "10", "b": True}, columns={})
    assert matches(binding("v=lt.9"), data)
    assert matches(binding("b=is.true"), data)
    assert not matches(binding("b=is.false"), data)


def test_condition_on_a_missing_column_is_false() -> None:
    b = binding("nope=eq.1")
    assert not matches(b, change(record={"id": 1}, columns={"id": "int8"}))
    assert not matches(binding("nope=is.null"), change(record={"id": 1}, columns={"id": "int8"}))


def test_delete_filters_on_old_record() -> None:
    b = binding("id=eq.46")
    columns = {"id": "int8", "text": "text"}
    assert matches(b, change("DELETE", old_record={"id": 46}, columns=columns))
    assert not matches(b, change("DELETE", old_record={"id": 47}, columns=columns))
    # default replica identity: only the key is in old_record, so other columns never match
    assert not matches(
        binding("text=eq.x"), change("DELETE", old_record={"id": 46}, columns=columns)
    )
    # an error row with no record at all
    assert not matches(b, change("DELETE", columns=columns))


def test_update_filters_on_the_new_record() -> None:
    b = binding("status=eq.done")
    data = change(
        "UPDATE",
        record={"id": 1, "status": "done"},
        old_record={"id": 1, "status": "todo"},
        columns={"id": "int8", "status": "text"},
    )
    assert matches(b, data)


def test_no_filter_matches_every_row_of_the_table() -> None:
    assert matches(binding(), change(record={}))
    assert matches(binding(), change("DELETE", old_record={}))


EVENTS = [
    ("*", "INSERT", True),
    ("*", "DELETE", True),
    ("INSERT", "INSERT", True),
    ("INSERT", "insert", True),
    ("insert", "INSERT", True),
    ("INSERT", "UPDATE", False),
    ("DELETE", "UPDATE", False),
]


@pytest.mark.parametrize(("binding_event", "change_type", "expected"), EVENTS)
def test_event_matches(binding_event: str, change_type: str, expected: bool) -> None:
    assert event_matches(binding_event, change_type) is expected


@pytest.mark.parametrize("event", ["INSERT", "UPDATE", "DELETE"])
def test_binding_event_filters_changes(event: str) -> None:
    b = binding(event=event.lower())
    for type_ in ("INSERT", "UPDATE", "DELETE"):
        data = change(type_, record={}, old_record={})
        assert matches(b, data) is (type_ == event)


TABLES = [
    ({"schema": "public", "table": "t"}, "public", "t", True),
    ({"schema": "public", "table": "t"}, "public", "u", False),
    ({"schema": "public", "table": "t"}, "private", "t", False),
    ({"schema": "public"}, "public", "anything", True),
    ({"schema": "*", "table": "*"}, "other", "x", True),
    ({"table": "t"}, "public", "t", True),
    ({"table": "t"}, "other", "t", False),
    # the server looks tables up with LIKE: % and _ are wildcards there
    ({"schema": "public", "table": "to_do"}, "public", "toXdo", True),
    ({"schema": "public", "table": "to%"}, "public", "todos", True),
    ({"schema": "pub%", "table": "t"}, "public", "t", True),
]


@pytest.mark.parametrize(("params", "schema", "table", "expected"), TABLES)
def test_schema_and_table(params: dict[str, Any], schema: str, table: str, expected: bool) -> None:
    data = change(record={}, schema=schema, table=table)
    assert matches(parse_binding({"event": "*", **params}), data) is expected


def test_matching_ids() -> None:
    columns = {"id": "int8"}
    small = binding("id=lt.10")
    big = binding("id=gt.10")
    every = binding()
    same_as_small = parse_binding(dict(small.params))
    bindings = [small, big, every, same_as_small]
    assert matching_ids(bindings, change(record={"id": 1}, columns=columns)) == [small.id, every.id]
    assert matching_ids(bindings, change(record={"id": 11}, columns=columns)) == [big.id, every.id]
    assert matching_ids([], change(record={"id": 1}, columns=columns)) == []
    assert matching_ids(bindings, {"type": 3}) == []
