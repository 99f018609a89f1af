"""The gateway policy: deny by default, token grants, declarative TOPICS/TABLES rules and
the AUTHORIZE hook, in their documented precedence."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from supa_realtime.gateway.policy import authorize, rule_allows, table_action
from supa_realtime.gateway.tokens import TokenClaims

calls: list[tuple[Any, str, str]] = []


def hook(user: Any, topic: str, action: str) -> bool:
    calls.append((user, topic, action))
    return topic == "hooked"


def bad_hook(user: Any, topic: str, action: str) -> Any:
    return "yes"


class FakeUser:
    """A user object with the attributes the rules read (no database needed)."""

    def __init__(
        self, *, staff: bool = False, active: bool = True, perms: frozenset[str] = frozenset()
    ) -> None:
        self.is_authenticated = True
        self.is_active = active
        self.is_staff = staff
        self.perms = perms

    def has_perm(self, perm: str) -> bool:
        return perm in self.perms


def _gateway(settings: Any, **gateway: Any) -> None:
    settings.SUPA_REALTIME = {**settings.SUPA_REALTIME, "GATEWAY": gateway}


def test_deny_by_default(settings: Any) -> None:
    _gateway(settings)
    for action in ("join", "broadcast", "presence", table_action("public", "todos")):
        assert authorize(FakeUser(staff=True), "room:1", action) is False


@pytest.mark.parametrize(
    ("rule", "user", "allowed"),
    [
        ("any", AnonymousUser(), True),
        ("authenticated", AnonymousUser(), False),
        ("authenticated", FakeUser(), True),
        ("staff", FakeUser(), False),
        ("staff", FakeUser(staff=True), True),
        ("staff", FakeUser(staff=True, active=False), False),
        ("app.view_thing", FakeUser(perms=frozenset({"app.view_thing"})), True),
        ("app.view_thing", FakeUser(), False),
        ("app.view_thing", AnonymousUser(), False),
    ],
)
def test_rules(rule: str, user: Any, allowed: bool) -> None:
    assert rule_allows(rule, user) is allowed


def test_declarative_topics_and_tables(settings: Any) -> None:
    _gateway(
        settings,
        TOPICS={"room:*": {"join": "any", "broadcast": "authenticated"}},
        TABLES={"public.todos": "authenticated", "audit.*": "staff"},
    )
    anon, alice = AnonymousUser(), FakeUser()
    assert authorize(anon, "room:1", "join")
    assert not authorize(anon, "room:1", "broadcast")
    assert authorize(alice, "room:1", "broadcast")
    assert not authorize(alice, "room:1", "presence")
    assert not authorize(alice, "lobby", "join")
    assert authorize(alice, "room:1", table_action("public", "todos"))
    assert not authorize(alice, "room:1", table_action("public", "secrets"))
    # a wildcard subscription needs a wildcard grant
    assert not authorize(alice, "room:1", table_action("public", "*"))
    assert authorize(FakeUser(staff=True), "x", table_action("audit", "*"))
    assert authorize(FakeUser(staff=True), "x", table_action("audit", "log"))


def test_token_grants_come_first(settings: Any) -> None:
    _gateway(settings)
    claims = TokenClaims(
        role="anon",
        exp=0,
        topics={"game:*": frozenset({"join", "postgres_changes:public.moves"})},
    )
    assert authorize(AnonymousUser(), "game:7", "join", claims)
    assert authorize(AnonymousUser(), "game:7", table_action("public", "moves"), claims)
    assert not authorize(AnonymousUser(), "game:7", "broadcast", claims)
    assert not authorize(AnonymousUser(), "chat:7", "join", claims)
    everything = TokenClaims(role="anon", exp=0, topics={"*": frozenset({"*"})})
    assert authorize(AnonymousUser(), "any:thing", "presence", everything)


def test_hook_is_asked_when_nothing_else_grants(settings: Any) -> None:
    _gateway(
        settings,
        AUTHORIZE=f"{__name__}.hook",
        TOPICS={"room:*": {"join": "any"}},
    )
    calls.clear()
    user = FakeUser()
    assert authorize(user, "room:1", "join")
    assert calls == []  # granted by TOPICS before the hook
    assert authorize(user, "hooked", "broadcast")
    assert not authorize(user, "other", "join")
    assert calls == [(user, "hooked", "broadcast"), (user, "other", "join")]


def test_hook_must_return_true(settings: Any) -> None:
    _gateway(settings, AUTHORIZE=f"{__name__}.bad_hook")
    assert authorize(FakeUser(), "room:1", "join") is False
