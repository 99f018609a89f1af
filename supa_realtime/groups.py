"""The one mapping from a Supabase Realtime topic to a Channels group name.

Theory of operation
-------------------

Channels accepts group names made of ASCII letters, digits, ``-``, ``_`` and ``.``, shorter
than 100 characters. Supabase topics are any Unicode text and always contain ``:``
(``realtime:room1``). :func:`group_for` bridges the two, and everything that sends to or
listens on a group (the worker, the consumer, ``broadcast()``, users' own consumers) goes
through it, so a topic always lands in the same group.

1. **Normalize.** ``realtime:room1`` and ``room1`` name the same Supabase channel (both official
   clients add the prefix for you), so they map to the same group: one leading ``realtime:`` is
   removed, giving the *subtopic*. ``realtime:realtime:x`` keeps its second prefix and stays a
   different topic from ``realtime:x``.

2. **Readable form** — ``realtime.`` + the escaped subtopic, when that is shorter than 100
   characters. Escaping keeps ASCII letters, digits, ``_`` and ``-`` and writes every other
   character as the UTF-8 bytes ``.XX`` (two upper-case hex digits each), the escape character
   ``.`` included (``.2E``). ``realtime:room:42`` becomes ``realtime.room.3A42``. The escaping is
   reversible, so distinct subtopics give distinct readable names.

3. **Hashed form** — ``realtime-sha256-`` + the 64 hex digits of the SHA-256 of the subtopic's
   UTF-8 bytes, when the readable form would be too long (80 characters in all). The prefix
   differs from the readable one at its ninth character, so the two forms never meet.

The mapping is injective on subtopics except for SHA-256 collisions between two long topics,
which no one knows how to produce. It is part of the public contract: the table in
``tests/test_groups.py`` pins exact outputs, and changing them is a breaking change (every
running worker and consumer must agree).

Lone surrogates (which JSON can carry) are encoded with ``surrogatepass`` so that every
``str`` has a group.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

__all__ = ["GROUP_NAME_MAX_LENGTH", "group_for", "topic_for_group"]

TOPIC_PREFIX: Final = "realtime:"
READABLE_PREFIX: Final = "realtime."
HASHED_PREFIX: Final = "realtime-sha256-"

#: Channels rejects group names of this length or longer.
GROUP_NAME_MAX_LENGTH: Final = 100

_SAFE_BYTES: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
)
_ESCAPE_RE: Final = re.compile(r"\.([0-9A-F]{2})")


def _subtopic(topic: str) -> str:
    return topic[len(TOPIC_PREFIX) :] if topic.startswith(TOPIC_PREFIX) else topic


def _escape(data: bytes) -> str:
    return "".join(chr(b) if b in _SAFE_BYTES else f".{b:02X}" for b in data)


def group_for(topic: str) -> str:
    """Return the Channels group name for a Supabase Realtime topic.

    Args:
        topic: a topic with or without its ``realtime:`` prefix (``realtime:room1`` and
            ``room1`` give the same group).

    Returns:
        A name of ASCII letters, digits, ``.``, ``_`` and ``-``, shorter than 100 characters.
        Distinct topics give distinct names (see the module docstring for the exact rule).

    Raises:
        TypeError: ``topic`` is not a ``str``.
    """
    if not isinstance(topic, str):
        raise TypeError(f"a topic must be a str, not {type(topic).__name__}")
    data = _subtopic(topic).encode("utf-8", "surrogatepass")
    readable = READABLE_PREFIX + _escape(data)
    if len(readable) < GROUP_NAME_MAX_LENGTH:
        return readable
    return HASHED_PREFIX + hashlib.sha256(data).hexdigest()


def topic_for_group(group: str) -> str | None:
    """Return the full topic (``realtime:…``) a readable group name came from.

    Returns ``None`` for hashed names (the hash cannot be reversed) and for names that
    :func:`group_for` never produces.
    """
    if not group.startswith(READABLE_PREFIX):
        return None
    escaped = group[len(READABLE_PREFIX) :]
    out = bytearray()
    pos = 0
    while pos < len(escaped):
        char = escaped[pos]
        if char == ".":
            match = _ESCAPE_RE.match(escaped, pos)
            if match is None:
                return None
            out.append(int(match.group(1), 16))
            pos = match.end()
        elif ord(char) < 128 and ord(char) in _SAFE_BYTES:
            out.append(ord(char))
            pos += 1
        else:
            return None
    if _escape(bytes(out)) != escaped:
        return None
    try:
        return TOPIC_PREFIX + out.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None
