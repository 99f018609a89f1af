"""Postgres value semantics for postgres_changes filters (PROTOCOL.md §4.2, §4.3).

The server decides whether a row passes a filter inside Postgres
(``realtime.check_equality_op``): it takes the column's value as text
(``value #>> '{}'``), casts it and the filter's value to the column type, and applies the
operator. This module does the same in Python for the types the ``columns`` list names:

* ``int2``/``int4``/``int8``/``oid``: integers (range-checked); ``numeric``: ``Decimal``;
  ``float4``/``float8``: floats (``float4`` rounded to single precision). ``NaN`` is equal
  to itself and greater than every number, as in Postgres.
* ``bool``: the spellings ``boolin`` accepts (``t``, ``yes``, ``on``, ``1``, prefixes...).
* ``text``, ``varchar``, ``name``, ``char``/``bpchar`` (trailing blanks ignored),
  ``citext`` (case-insensitive): strings, compared by code point (the ``C`` collation).
* ``timestamptz`` (a missing offset means UTC), ``timestamp`` (an offset is ignored),
  ``date``, ``time``; ``infinity``/``-infinity`` order around every date.
* ``uuid``: canonical value, so case and braces do not matter.
* ``json``/``jsonb``: compared as parsed JSON.
* arrays (``_int4`` ...): Postgres array literals, element-wise. The server casts a record's
  array from its JSON text (``[1, 2]``), which fails, so such rows never pass a filter.
* anything else (enums, domains, ...): compared as text.

A value that does not cast gives ``None`` (SQL unknown): the condition is then false, which
is what a row gets from the server when the comparison cannot be made.
"""

from __future__ import annotations

import functools
import math
import re
import struct
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

__all__ = [
    "CastError",
    "cast",
    "compare",
    "like_regex",
    "parse_array_literal",
    "posix_regex",
    "record_text",
]


class CastError(ValueError):
    """The text is not a valid value of the type (Postgres would raise 22P02 or similar)."""


def record_text(value: Any) -> str | None:
    """The text Postgres gets from a record value with ``value #>> '{}'`` (``None`` = NULL)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


# --- scalar casts -------------------------------------------------------------------------

_INT_RANGES = {
    "int2": 2**15,
    "int4": 2**31,
    "int8": 2**63,
    "oid": 2**32,
}


def _cast_int(text: str, bound: int) -> int:
    stripped = text.strip()
    if not re.fullmatch(r"[+-]?[0-9][0-9_]*", stripped):
        raise CastError(f"invalid input syntax for type integer: {text!r}")
    value = int(stripped)
    low = 0 if bound == 2**32 else -bound
    if not low <= value < bound:
        raise CastError(f"value {text!r} is out of range")
    return value


# Numbers sort with NaN above everything and equal to itself: (is_nan, value).
_NumberKey = tuple[int, Any]


def _cast_numeric(text: str) -> _NumberKey:
    stripped = text.strip()
    try:
        value = Decimal(stripped)
    except InvalidOperation:
        raise CastError(f"invalid input syntax for type numeric: {text!r}") from None
    if value.is_nan():
        return (1, 0)
    return (0, value)


def _cast_float(text: str, single: bool) -> _NumberKey:
    stripped = text.strip()
    if not re.fullmatch(r"[+-]?(?:[0-9._]+(?:[eE][+-]?[0-9]+)?|(?i:nan|inf|infinity))", stripped):
        raise CastError(f"invalid input syntax for type double precision: {text!r}")
    try:
        value = float(stripped)
    except ValueError:
        raise CastError(f"invalid input syntax for type double precision: {text!r}") from None
    if value != value:
        return (1, 0)
    if single:
        try:
            rounded = struct.unpack("f", struct.pack("f", value))[0]
        except OverflowError:
            rounded = float("inf")
        if math.isinf(rounded) and not math.isinf(value):
            raise CastError(f"value {text!r} is out of range for type real")
        value = rounded
    return (0, value)


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _cast_bool(text: str) -> bool:
    word = text.strip().lower()
    if word:
        # boolin accepts any unique prefix ("o" alone is ambiguous between on/off)
        for spelling in _TRUE:
            if spelling.startswith(word) and (spelling != "on" or len(word) >= 2):
                return True
        for spelling in _FALSE:
            if spelling.startswith(word) and (spelling != "off" or len(word) >= 2):
                return False
    raise CastError(f"invalid input syntax for type boolean: {text!r}")


# Dates and times: (-1,) = -infinity < (0, value) < (1,) = infinity.
_DateKey = tuple[Any, ...]


def _special_date(text: str) -> _DateKey | None:
    word = text.strip().lower()
    if word in ("infinity", "+infinity"):
        return (1,)
    if word == "-infinity":
        return (-1,)
    return None


def _parse_datetime(text: str) -> datetime:
    stripped = text.strip()
    if stripped.endswith(("z", "Z")):
        stripped = stripped[:-1] + "+00:00"
    stripped = re.sub(r"([+-]\d\d)$", r"\1:00", stripped)  # "+00" -> "+00:00"
    try:
        return datetime.fromisoformat(stripped)
    except ValueError:
        raise CastError(f"invalid input syntax for type timestamp: {text!r}") from None


def _cast_timestamptz(text: str) -> _DateKey:
    special = _special_date(text)
    if special is not None:
        return special
    value = _parse_datetime(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (0, value)


def _cast_timestamp(text: str) -> _DateKey:
    special = _special_date(text)
    if special is not None:
        return special
    return (0, _parse_datetime(text).replace(tzinfo=None))


def _cast_date(text: str) -> _DateKey:
    special = _special_date(text)
    if special is not None:
        return special
    try:
        return (0, date.fromisoformat(text.strip()))
    except ValueError:
        return (0, _parse_datetime(text).date())


def _cast_time(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise CastError(f"invalid input syntax for type time: {text!r}") from None


def _cast_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise CastError(f"invalid input syntax for type uuid: {text!r}") from None


def _cast_json(text: str) -> bytes:
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        raise CastError(f"invalid input syntax for type json: {text!r}") from None


def _identity(text: str) -> str:
    return text


_CASTS: dict[str, Callable[[str], Any]] = {
    "numeric": _cast_numeric,
    "float4": functools.partial(_cast_float, single=True),
    "float8": functools.partial(_cast_float, single=False),
    "bool": _cast_bool,
    "text": _identity,
    "varchar": _identity,
    "name": _identity,
    "bpchar": lambda text: text.rstrip(" "),
    "char": lambda text: text.rstrip(" "),
    "citext": str.lower,
    "timestamptz": _cast_timestamptz,
    "timestamp": _cast_timestamp,
    "date": _cast_date,
    "time": _cast_time,
    "uuid": _cast_uuid,
    "json": _cast_json,
    "jsonb": _cast_json,
}
for _name, _bound in _INT_RANGES.items():
    _CASTS[_name] = functools.partial(_cast_int, bound=_bound)

TEXT_TYPES = frozenset({"text", "varchar", "name", "bpchar", "char", "citext"})


def cast(text: str, type_name: str | None) -> Any:
    """Cast ``text`` to a comparable Python value of the Postgres type ``type_name``.

    Raises :class:`CastError` when Postgres would refuse the text.
    """
    if type_name and type_name.startswith("_"):
        return _cast_array(text, type_name[1:])
    caster = _CASTS.get(type_name or "", _identity)
    return caster(text)


def _cast_array(text: str, element_type: str) -> tuple[Any, ...]:
    # A record's array arrives as JSON (``[1, 2]``), which is not an array literal: Postgres
    # cannot cast it either, so a filter on an array column never lets such a row through.
    items = parse_array_literal(text)
    return tuple((0,) if item is None else (1, cast(item, element_type)) for item in items)


def parse_array_literal(text: str) -> tuple[str | None, ...]:
    """Elements of a one-dimensional Postgres array literal such as ``{1,"a,b",NULL}``.

    Double quotes protect commas and blanks, a backslash escapes the next character, blanks
    around an unquoted element are dropped, and an unquoted ``NULL`` is SQL NULL (``None``).
    Raises :class:`CastError` ("malformed array literal") for anything else.
    """
    error = CastError(f'malformed array literal: "{text}"')
    body = text.strip()
    if len(body) < 2 or body[0] != "{" or body[-1] != "}":
        raise error
    inner = body[1:-1]
    if not inner.strip():
        return ()
    elements: list[str | None] = []
    i, n = 0, len(inner)
    while True:
        # one element: any mix of quoted and unquoted parts up to a top-level comma
        chars: list[str] = []
        quoted_any = False
        trailing_blanks = 0  # unquoted, unescaped blanks at the end of ``chars``
        in_quotes = False
        while i < n:
            ch = inner[i]
            if ch == "\\":
                if i + 1 >= n:
                    raise error
                chars.append(inner[i + 1])
                quoted_any = True
                trailing_blanks = 0
                i += 2
                continue
            if ch == '"':
                in_quotes = not in_quotes
                quoted_any = True
                trailing_blanks = 0
                i += 1
                continue
            if in_quotes:
                chars.append(ch)
                i += 1
                continue
            if ch == ",":
                break
            if ch in "{}":
                raise error
            if ch.isspace():
                if chars or quoted_any:
                    chars.append(ch)
                    trailing_blanks += 1
            else:
                chars.append(ch)
                trailing_blanks = 0
            i += 1
        if in_quotes:
            raise error
        if trailing_blanks:
            del chars[-trailing_blanks:]
        if not chars and not quoted_any:
            raise error
        value = "".join(chars)
        elements.append(None if not quoted_any and value.upper() == "NULL" else value)
        if i >= n:
            return tuple(elements)
        i += 1  # the comma


# --- operators ----------------------------------------------------------------------------


def compare(op: str, left: Any, right: Any) -> bool | None:
    """``left <op> right`` for eq/neq/lt/lte/gt/gte; ``None`` when the values do not compare."""
    try:
        if op == "eq":
            return bool(left == right)
        if op == "neq":
            return bool(left != right)
        if op == "lt":
            return bool(left < right)
        if op == "lte":
            return bool(left <= right)
        if op == "gt":
            return bool(left > right)
        if op == "gte":
            return bool(left >= right)
    except TypeError:
        return None
    raise ValueError(f"not a comparison operator: {op!r}")


@functools.lru_cache(maxsize=1024)
def like_regex(pattern: str, insensitive: bool) -> re.Pattern[str] | None:
    """The regex of a ``LIKE``/``ILIKE`` pattern (``None`` if Postgres rejects the pattern)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern):
                return None  # "LIKE pattern must not end with escape character"
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE if insensitive else 0)
    return re.compile("".join(out), flags)


_POSIX_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r"\s",
    "blank": r" \t",
    "punct": r"!-/:-@\[-`{-~",
    "xdigit": "0-9A-Fa-f",
    "word": r"\w",
    "cntrl": r"\x00-\x1f\x7f",
    "print": r"\x20-\x7e",
    "graph": r"\x21-\x7e",
}
_ESCAPE_MAP = {
    "m": r"\b(?=\w)",  # start of a word
    "M": r"\b(?<=\w)",  # end of a word
    "y": r"\b",
    "Y": r"\B",
    "B": r"\\",  # a synonym for a backslash in Postgres, a non-boundary in Python
    "b": r"\x08",  # backspace in Postgres, a word boundary in Python
    "e": r"\x1b",
}
_BOUND = re.compile(r"\{(\d+)(,(\d*))?\}")
_DUPMAX = 255


def _translate_regex(pattern: str) -> str:
    """Rewrite a Postgres advanced regular expression into Python ``re`` syntax.

    Raises ``re.error`` where Postgres refuses the pattern and Python would accept it.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    after_quantifier = 0  # 1 just after a quantifier, 2 after its non-greedy "?"
    while i < n:
        ch = pattern[i]
        if ch == "[":
            end = i + 1
            if end < n and pattern[end] == "^":
                end += 1
            if end < n and pattern[end] == "]":
                end += 1  # a leading ] is literal
            while end < n and pattern[end] != "]":
                if pattern.startswith("[:", end):
                    close = pattern.find(":]", end + 2)
                    if close < 0:
                        raise re.error("invalid character class")
                    name = pattern[end + 2 : close]
                    if name not in _POSIX_CLASSES:
                        raise re.error(f"invalid character class {name!r}")
                    end = close + 2
                    continue
                if pattern[end] == "\\" and pattern[end + 1 : end + 2].isdigit():
                    raise re.error("invalid escape \\ sequence")  # no back-references here
                end += 2 if pattern[end] == "\\" else 1
            if end >= n:
                raise re.error("brackets [] not balanced")
            body = re.sub(
                r"\[:([a-z]+):\]", lambda m: _POSIX_CLASSES[m.group(1)], pattern[i + 1 : end]
            )
            out.append("[" + body.replace("[", "\\[") + "]")
            i, after_quantifier = end + 1, 0
            continue
        if ch == "\\":
            if i + 1 >= n:
                raise re.error("invalid escape \\ sequence")
            nxt = pattern[i + 1]
            out.append(_ESCAPE_MAP.get(nxt, "\\" + nxt))
            i, after_quantifier = i + 2, 0
            continue
        if ch in "*+?" or (ch == "{" and i + 1 < n and pattern[i + 1].isdigit()):
            if ch == "?" and after_quantifier == 1:  # the non-greedy marker
                out.append("?")
                i, after_quantifier = i + 1, 2
                continue
            if after_quantifier:
                raise re.error("quantifier operand invalid")
            if ch == "{":
                bound = _BOUND.match(pattern, i)
                if bound is None:
                    raise re.error("invalid repetition count(s)")
                low, high = int(bound.group(1)), bound.group(3)
                if low > _DUPMAX or (high and (int(high) > _DUPMAX or int(high) < low)):
                    raise re.error("invalid repetition count(s)")
                out.append(bound.group(0))
                i = bound.end()
            else:
                out.append(ch)
                i += 1
            after_quantifier = 1
            continue
        if ch == "{":
            out.append("\\{")
        elif ch == "$":
            out.append(r"\Z")  # Python's $ also matches before a final newline
        else:
            out.append(ch)
        i, after_quantifier = i + 1, 0
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def posix_regex(pattern: str, insensitive: bool) -> re.Pattern[str]:
    """Compile a Postgres regular expression (``~``, ``~*``) with Python's ``re``.

    The pattern is translated first: POSIX bracket classes (``[[:alpha:]]``), the escapes
    ``\\m \\M \\y \\Y \\B \\b \\e``, ``$`` only at the very end, ``.`` also matching a newline, and
    Postgres's stricter rules for bounds and stacked quantifiers. Raises ``re.error``.
    """
    flags = re.DOTALL | (re.IGNORECASE if insensitive else 0)
    return re.compile(_translate_regex(pattern), flags)
