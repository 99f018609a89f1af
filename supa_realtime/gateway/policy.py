"""Who may do what on the gateway: deny by default.

Actions:

- ``"join"``: join a topic;
- ``"broadcast"``: send broadcasts on it;
- ``"presence"``: track presence on it;
- ``"postgres_changes:<schema>.<table>"``: receive that table's rows. A binding with a
  wildcard (``schema: "public"`` with no table, or ``table: "*"``) asks for
  ``postgres_changes:public.*`` — a wildcard subscription needs a wildcard grant.

Topics are passed as *subtopics* (``room:1`` for the wire topic ``realtime:room:1``).

Precedence: an action is allowed when any of these grants it, checked in this order, and
denied when none does:

1. the token the client presented (:mod:`supa_realtime.gateway.tokens`), whose ``topics``
   claim maps topic patterns to actions;
2. the declarative settings ``SUPA_REALTIME["GATEWAY"]["TOPICS"]`` (topic pattern →
   ``{action: rule}``) and ``["TABLES"]`` (``"schema.table"`` pattern → rule), where a rule
   is ``"any"``, ``"authenticated"``, ``"staff"`` or a permission name;
3. the hook ``SUPA_REALTIME["GATEWAY"]["AUTHORIZE"]``, the dotted path of a callable
   ``(user, topic, action) -> bool``.

Everything here is synchronous (permission checks and hooks may query the database); the
consumer calls :func:`authorize` through ``database_sync_to_async``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any, Final

from django.utils.module_loading import import_string

from ..conf import settings as realtime_settings
from .tokens import TokenClaims

__all__ = ["POSTGRES_CHANGES_ACTION", "authorize", "rule_allows", "table_action"]

logger = logging.getLogger(__name__)

POSTGRES_CHANGES_ACTION: Final = "postgres_changes:"

Hook = Callable[[Any, str, str], bool]
_hooks: dict[str, Hook] = {}


def table_action(schema: str, table: str) -> str:
    """The action that allows the rows of ``schema.table`` (``"*"`` for wildcards)."""
    return f"{POSTGRES_CHANGES_ACTION}{schema}.{table}"


def rule_allows(rule: str, user: Any) -> bool:
    """Whether ``user`` passes a declarative rule."""
    if rule == "any":
        return True
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if rule == "authenticated":
        return True
    if not getattr(user, "is_active", False):
        return False
    if rule == "staff":
        return bool(getattr(user, "is_staff", False))
    return bool(user.has_perm(rule))


def _hook(path: str) -> Hook:
    hook = _hooks.get(path)
    if hook is None:
        hook = import_string(path)
        if not callable(hook):
            raise TypeError(f'SUPA_REALTIME["GATEWAY"]["AUTHORIZE"] = {path!r} is not callable')
        _hooks[path] = hook
    return hook


def _declared(user: Any, topic: str, action: str) -> bool:
    gateway = realtime_settings.GATEWAY
    if action.startswith(POSTGRES_CHANGES_ACTION):
        name = action[len(POSTGRES_CHANGES_ACTION) :]
        return any(
            fnmatchcase(name, pattern) and rule_allows(rule, user)
            for pattern, rule in gateway.tables
        )
    for pattern, rules in gateway.topics:
        if not fnmatchcase(topic, pattern):
            continue
        for rule_action, rule in rules:
            if rule_action == action and rule_allows(rule, user):
                return True
    return False


def authorize(user: Any, topic: str, action: str, claims: TokenClaims | None = None) -> bool:
    """Whether ``user`` (holding ``claims``, if a token was presented) may ``action`` on
    ``topic`` (a subtopic). See the module docstring for the precedence."""
    if claims is not None and claims.grants(topic, action):
        return True
    if _declared(user, topic, action):
        return True
    path = realtime_settings.GATEWAY.authorize
    if path is None:
        return False
    allowed = _hook(path)(user, topic, action)
    if not isinstance(allowed, bool):
        logger.warning(
            "the AUTHORIZE hook returned %s for %r on %r; only True allows",
            type(allowed).__name__,
            action,
            topic,
        )
    return allowed is True
