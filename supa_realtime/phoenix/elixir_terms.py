"""Render JSON values the way Elixir's ``inspect/2`` prints them.

The Realtime server builds some ``system`` messages by interpolating ``inspect(term)``
(PROTOCOL.md §3.7): the subscription params map of "No subscription params provided", the
``["foo", "hey"]`` list of a filter parse error, and the pretty-printed filter tuples of
"Unable to subscribe to changes". Reproducing those texts byte for byte needs Elixir's
rules, which this module implements for the terms a decoded JSON object can become:

* strings: double-quoted, with ``\\"``, ``\\\\``, ``\\#{`` and the C-style escapes; a string
  that is not "printable" by ``String.printable?/1`` is shown as a bitstring ``<<104, 1>>``;
  longer than 4096 bytes it is cut and followed by `` <> ...`` (``printable_limit``);
* ``nil``/``true``/``false``, integers, floats in Erlang's shortest form (``1.0e20``);
* lists ``[1, 2]`` and maps ``%{"a" => 1}`` (keys in term order), at most 50 items each,
  then ``...`` (``limit``);
* filter tuples ``{"id", "eq", "1", false}``.

``pretty=True`` wraps at 80 columns like ``Inspect.Algebra``: a container whose items are all
"simple" fills lines (flex breaks, nested one column in); a container holding other
containers puts each item on its own line, indented by two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

__all__ = ["Tuple", "inspect_string", "inspect_term"]

_WIDTH = 80
_LIMIT = 50
_PRINTABLE_LIMIT = 4096

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\b": "\\b",
    "\f": "\\f",
    "\x1b": "\\e",
    "\x7f": "\\d",
    "\x07": "\\a",
}


class Tuple(tuple[Any, ...]):
    """A Python tuple rendered as an Elixir tuple ``{a, b}`` (plain tuples render as lists)."""


def _printable(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x20 <= cp <= 0x7E
        or 0xA0 <= cp <= 0xD7FF
        or 0xE000 <= cp <= 0xFFFD
        or 0x10000 <= cp <= 0x10FFFF
        or ch in _ESCAPES
    )


def inspect_string(text: str) -> str:
    """``inspect("...")`` for one string."""
    raw = text.encode("utf-8", "surrogatepass")
    truncated = len(raw) > _PRINTABLE_LIMIT
    if truncated:
        text = raw[:_PRINTABLE_LIMIT].decode("utf-8", "ignore")
    if not all(_printable(ch) for ch in text):
        return "<<" + ", ".join(str(b) for b in raw) + ">>"
    out = text.replace("#{", "\x00#{")  # mark before escaping the backslashes
    body = "".join(_ESCAPES.get(ch, ch) for ch in out).replace("\x00#{", "\\#{")
    return f'"{body}"' + (" <> ..." if truncated else "")


def _float(value: float) -> str:
    """Erlang's shortest float text: the fixed or the scientific form, whichever is shorter."""
    if value != value or value in (float("inf"), float("-inf")):
        return repr(value)  # JSON never carries these
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).lstrip("0").rstrip("0")
    if not digits:
        return "-0.0" if sign else "0.0"
    # position of the first significant digit relative to the decimal point
    lead_zeros = len(digit_tuple) - len("".join(map(str, digit_tuple)).lstrip("0"))
    exp = len(digit_tuple) - lead_zeros + int(exponent) - 1
    sci = f"{digits[0]}.{digits[1:] or '0'}e{exp}"
    if exp >= 0:
        fixed = f"{digits[: exp + 1].ljust(exp + 1, '0')}.{digits[exp + 1 :] or '0'}"
    else:
        fixed = "0." + "0" * (-exp - 1) + digits
    return ("-" if sign else "") + (fixed if len(fixed) <= len(sci) else sci)


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping | Tuple | list)


def _items(value: Any) -> tuple[str, str, list[Any]]:
    """(open, close, items) of a container; map items are key/value pairs."""
    if isinstance(value, Mapping):
        pairs = sorted(value.items(), key=lambda kv: _term_order_key(kv[0]))
        return "%{", "}", [_Pair(k, v) for k, v in pairs]
    if isinstance(value, Tuple):
        return "{", "}", list(value)
    return "[", "]", list(value)


class _Pair:
    __slots__ = ("key", "value")

    def __init__(self, key: Any, value: Any) -> None:
        self.key = key
        self.value = value


def _term_order_key(key: Any) -> tuple[int, Any]:
    # Erlang term order: number < atom < ... < binary. JSON keys are always strings.
    if isinstance(key, str):
        return (1, key.encode("utf-8", "surrogatepass"))
    return (0, str(key))


class _Ellipsis:
    pass


_ELLIPSIS = _Ellipsis()


def _flat(value: Any) -> str:
    if isinstance(value, _Ellipsis):
        return "..."
    if isinstance(value, _Pair):
        return f"{_flat(value.key)} => {_flat(value.value)}"
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return inspect_string(value)
    if _is_container(value):
        open_, close, items = _items(value)
        parts = [_flat(item) for item in items[:_LIMIT]]
        if len(items) > _LIMIT:
            parts.append("...")
        return open_ + ", ".join(parts) + close
    if isinstance(value, Sequence):
        return _flat(list(value))
    return inspect_string(str(value))


def inspect_term(value: Any, *, pretty: bool = False) -> str:
    """``inspect(value)`` (``pretty=True``: ``inspect(value, pretty: true)``).

    Python tuples of type :class:`Tuple` become Elixir tuples; other sequences become lists.
    """
    if not pretty:
        return _flat(value)
    return "\n".join(_pretty(value, 0, 0, ""))


def _pretty(value: Any, col: int, indent: int, suffix: str) -> list[str]:
    """Lines of ``value`` laid out from column ``col``; later lines carry their indentation.

    ``suffix`` is what follows the value up to the next line break (a separating comma).
    """
    flat = _flat(value) + suffix
    if col + len(flat) <= _WIDTH or not _is_container(value):
        return [flat]
    open_, close, items = _items(value)
    docs: list[Any] = list(items[:_LIMIT])
    if len(items) > _LIMIT:
        docs.append(_ELLIPSIS)
    if all(not _is_container(_inner(d)) for d in docs):
        # Every item is simple: fill lines, continuation nested one column in (flex breaks).
        lines = [open_]
        for n, doc in enumerate(docs):
            text = _flat(doc) + ("," if n < len(docs) - 1 else close + suffix)
            current = (col if len(lines) == 1 else 0) + len(lines[-1])
            if n == 0:
                lines[-1] += text
            elif current + 1 + len(text) <= _WIDTH:
                lines[-1] += " " + text
            else:
                lines.append(" " * (indent + 1) + text)
        return lines
    # Some item is a container: one item per line, indented by two, closing on its own line.
    lines = [open_]
    for n, doc in enumerate(docs):
        sep = "," if n < len(docs) - 1 else ""
        prefix = " " * (indent + 2)
        if isinstance(doc, _Pair):
            prefix += _flat(doc.key) + " => "
        child = _pretty(_inner(doc), len(prefix), indent + 2, sep)
        lines.append(prefix + child[0])
        lines.extend(child[1:])
    lines.append(" " * indent + close + suffix)
    return lines


def _inner(doc: Any) -> Any:
    return doc.value if isinstance(doc, _Pair) else doc
