"""Elixir ``inspect/2`` rendering, as the server's messages embed it.

The expected texts are what Elixir 1.14 prints for the same terms.
"""

from __future__ import annotations

from typing import Any

import pytest

from supa_realtime.phoenix.elixir_terms import Tuple, inspect_string, inspect_term

FLAT: list[tuple[Any, str]] = [
    (None, "nil"),
    (True, "true"),
    (False, "false"),
    (42, "42"),
    (-7, "-7"),
    (2**70, str(2**70)),
    (1.5, "1.5"),
    (100.0, "100.0"),
    (1e20, "1.0e20"),
    (1e15, "1000000000000000.0"),
    (1e16, "1.0e16"),
    (12345678901234567890.0, "1.2345678901234567e19"),
    (1e-10, "1.0e-10"),
    (1234567.0, "1234567.0"),
    (0.0001, "0.0001"),
    (1e-5, "1.0e-5"),
    (-2.5, "-2.5"),
    (0.0, "0.0"),
    ("", '""'),
    ("hey", '"hey"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("a#{b}", '"a\\#{b}"'),
    ("tab\tnew\nline\r", '"tab\\tnew\\nline\\r"'),
    ("\x1b\x07\x7f", '"\\e\\a\\d"'),
    ("café ☕", '"café ☕"'),
    ("a\x01", "<<97, 1>>"),
    ([], "[]"),
    (["foo", "hey"], '["foo", "hey"]'),
    ([1, [2, None]], "[1, [2, nil]]"),
    ({}, "%{}"),
    ({"b": 1, "a": "x"}, '%{"a" => "x", "b" => 1}'),
    ({"é": 1, "z": 2, "A": 3}, '%{"A" => 3, "z" => 2, "é" => 1}'),
    (Tuple(("id", "eq", "1", False)), '{"id", "eq", "1", false}'),
    (list(range(51)), "[" + ", ".join(str(n) for n in range(50)) + ", ...]"),
    (list(range(50)), "[" + ", ".join(str(n) for n in range(50)) + "]"),
    # each item uses one unit of the limit; the rest is the limit of its contents
    ({"k": list(range(60))}, '%{"k" => [' + ", ".join(str(n) for n in range(49)) + ", ...]}"),
]


@pytest.mark.parametrize(("term", "text"), FLAT)
def test_inspect(term: Any, text: str) -> None:
    assert inspect_term(term) == text


def test_bitstrings_obey_the_limit() -> None:
    raw = "\x01" * 60
    assert inspect_string(raw) == "<<" + ", ".join(["1"] * 50) + ", ...>>"
    # inside a list the second item has 48 left, as in the server's filter errors
    assert inspect_term(["fts", raw]) == '["fts", <<' + ", ".join(["1"] * 48) + ", ...>>]"


def test_long_strings_are_cut_at_the_printable_limit() -> None:
    assert inspect_string("a" * 4097) == '"' + "a" * 4096 + '" <> ...'
    assert inspect_string("a" * 4096) == '"' + "a" * 4096 + '"'


def test_pretty_short_terms_stay_on_one_line() -> None:
    assert inspect_term([Tuple(("id", "eq", "1", False))], pretty=True) == (
        '[{"id", "eq", "1", false}]'
    )
    assert inspect_term(None, pretty=True) == "nil"


def test_pretty_list_of_strings_fills_lines() -> None:
    columns = [f"column_{n}" for n in range(12)]
    assert inspect_term(columns, pretty=True) == (
        '["column_0", "column_1", "column_2", "column_3", "column_4", "column_5",\n'
        ' "column_6", "column_7", "column_8", "column_9", "column_10", "column_11"]'
    )


def test_pretty_tuple_breaks_only_where_needed() -> None:
    term = [
        Tuple(("a_quite_long_column_name_here", "like", "some pattern that is long enough%", False))
    ]
    assert inspect_term(term, pretty=True) == (
        "[\n"
        '  {"a_quite_long_column_name_here", "like", "some pattern that is long enough%",\n'
        "   false}\n"
        "]"
    )


def test_pretty_list_of_tuples_puts_each_on_its_own_line() -> None:
    long = "{" + ",".join(str(n) for n in range(40)) + "}"
    terms = [Tuple(("a", "eq", "1", False)), Tuple(("id", "in", long, True))]
    assert inspect_term(terms, pretty=True) == (
        f'[\n  {{"a", "eq", "1", false}},\n  {{"id", "in",\n   "{long}",\n   true}}\n]'
    )
