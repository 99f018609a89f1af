"""An AUTHORIZE hook for the gateway tests (imported by dotted path in the daphne process)."""

from __future__ import annotations

from typing import Any


def authorize(user: Any, topic: str, action: str) -> bool:
    """Users may do anything on ``user:<their username>``; ``hook:open`` is joinable by all."""
    if topic == "hook:open":
        return action == "join"
    return bool(user.is_authenticated and topic == f"user:{user.get_username()}")
