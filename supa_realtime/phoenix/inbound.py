"""Frames a server receives: their size as the frame limit measures it, and their text
with secrets removed, for logs."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["frame_size", "redact"]

_SECRET_RE: Final = re.compile(r"eyJ[\w.-]*|sb_(publishable|secret)_[\w-]+")
_TOKEN_FIELD_RE: Final = re.compile(
    r"(['\"](?:access_token|user_token|apikey)['\"]\s*:\s*['\"])[^'\"]*"
)


def redact(text: str) -> str:
    """``text`` with anything that looks like a JWT or a Supabase key replaced."""
    return _TOKEN_FIELD_RE.sub(r"\1<redacted>", _SECRET_RE.sub("<redacted>", text))


def frame_size(data: str | bytes, limit: int) -> int:
    """Bytes on the wire; text is only encoded when its length alone cannot settle whether
    it is over ``limit``."""
    if isinstance(data, bytes) or len(data) * 4 <= limit:
        return len(data)
    return len(data.encode("utf-8", "surrogatepass"))
