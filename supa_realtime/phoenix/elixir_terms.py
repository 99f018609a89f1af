"""Render JSON values the way Elixir's ``inspect/2`` prints them.

The Realtime server builds some ``system`` messages by interpolating ``inspect(term)``
(PROTOCOL.md §3.7): the subscription params map of "No subscription params provided", the
``["foo", "hey"]`` list of a filter parse error, and the pretty-printed filter tuples of
"Unable to subscribe to changes". Reproducing those texts byte for byte needs Elixir's
rules, which this module implements for the terms a decoded JSON object can become:

* strings: double-quoted, with ``\\"``, ``\\\\``, ``\\#{`` and the C-style escapes; a string
  that is not "printable" by ``String.printable?/1`` is shown as a bitstring ``<<104, 1>>``;
  longer than 4096 bytes it is cut and followed by `` <> ...`` (``printable_limit``);
* ``nil``/``true``/``false``, integers, floats (``100.0``, ``1.0e16``, ``1.0e-5``);
* lists ``[1, 2]`` and maps ``%{"a" => 1}`` (keys in term order); each item uses one unit of
  the limit of 50 and the rest is its own contents' limit, then ``...`` (``limit``);
* filter tuples ``{"id", "eq", "1", false}``.

``pretty=True`` wraps at 80 columns like ``Inspect.Algebra``: a container whose items are all
"simple" fills lines (flex breaks, nested one column in); a container holding other
containers puts each item on its own line, indented by two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def inspect_string(text: str, limit: int = _LIMIT) -> str:
    """``inspect("...")`` for one string; ``limit`` caps the bytes of a non-printable one."""
    raw = text.encode("utf-8", "surrogatepass")
    truncated = len(raw) > _PRINTABLE_LIMIT
    if truncated:
        text = raw[:_PRINTABLE_LIMIT].decode("utf-8", "ignore")
    if not all(_printable(ch) for ch in text):
        shown = [str(b) for b in raw[: max(limit, 0)]]
        return "<<" + ", ".join(shown + (["..."] if len(raw) > limit else [])) + ">>"
    out = text.replace("#{", "\x00#{")  # mark before escaping the backslashes
    body = "".join(_ESCAPES.get(ch, ch) for ch in out).replace("\x00#{", "\\#{")
    return f'"{body}"' + (" <> ..." if truncated else "")


def _float(value: float) -> str:
    """Elixir's float text: shortest digits, scientific below 1e-4 and from 1e16 on."""
    if value != value or value in (float("inf"), float("-inf")):
        return repr(value)  # JSON never carries these
    text = repr(value)  # the same shortest digits and the same switch to scientific
    if "e" not in text:
        return text
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}e{int(exponent)}"


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


def _limited(items: list[Any], limit: int) -> list[tuple[Any, int]]:
    """Items with the ``limit`` each is rendered with; ``...`` once the limit runs out.

    As in ``Inspect.Algebra.container_doc``, every item uses one unit of the limit, and what
    is left is the limit of that item's own contents.
    """
    out: list[tuple[Any, int]] = []
    for item in items:
        if limit <= 0:
            out.append((_ELLIPSIS, 0))
            break
        limit -= 1
        out.append((item, limit))
    return out


def _flat(value: Any, limit: int = _LIMIT) -> str:
    if isinstance(value, _Ellipsis):
        return "..."
    if isinstance(value, _Pair):
        return f"{_flat(value.key, limit)} => {_flat(value.value, limit)}"
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
        return inspect_string(value, limit)
    if _is_container(value):
        open_, close, items = _items(value)
        return open_ + ", ".join(_flat(i, lim) for i, lim in _limited(items, limit)) + close
    if isinstance(value, Sequence):
        return _flat(list(value), limit)
    return inspect_string(str(value))


def inspect_term(value: Any, *, pretty: bool = False) -> str:
    """``inspect(value)`` (``pretty=True``: ``inspect(value, pretty: true)``).

    Python tuples of type :class:`Tuple` become Elixir tuples; other sequences become lists.
    """
    if not pretty:
        return _flat(value)
    return "\n".join(_pretty(value, 0, 0, ""))


def _pretty(value: Any, col: int, indent: int, suffix: str, limit: int = _LIMIT) -> list[str]:
    """Lines of ``value`` laid out from column ``col``; later lines carry their indentation.

    ``suffix`` is what follows the value up to the next line break (a separating comma).
    """
    flat = _flat(value, limit) + suffix
    if col + len(flat) <= _WIDTH or not _is_container(value):
        return [flat]
    open_, close, items = _items(value)
    docs = _limited(items, limit)
    if all(not _is_container(_inner(d)) for d, _ in docs):
        # Every item is simple: fill lines, continuation nested one column in (flex breaks).
        lines = [open_]
        for n, (doc, lim) in enumerate(docs):
            text = _flat(doc, lim) + ("," if n < len(docs) - 1 else close + suffix)
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
    for n, (doc, lim) in enumerate(docs):
        sep = "," if n < len(docs) - 1 else ""
        prefix = " " * (indent + 2)
        if isinstance(doc, _Pair):
            prefix += _flat(doc.key, lim) + " => "
        child = _pretty(_inner(doc), len(prefix), indent + 2, sep, lim)
        lines.append(prefix + child[0])
        lines.extend(child[1:])
    lines.append(" " * indent + close + suffix)
    return lines


def _inner(doc: Any) -> Any:
    return doc.value if isinstance(doc, _Pair) else doc
