"""The GATEWAY setting: parsing, and system checks E007 (malformed), E008, W003."""

from __future__ import annotations

from typing import Any

import pytest

from supa_realtime import checks
from supa_realtime.conf import ConfigurationError
from supa_realtime.conf import settings as realtime_settings


def _gateway(settings: Any, **gateway: Any) -> None:
    settings.SUPA_REALTIME = {**settings.SUPA_REALTIME, "GATEWAY": gateway}


def test_defaults(settings: Any) -> None:
    gateway = realtime_settings.GATEWAY
    assert gateway.authorize is None
    assert gateway.topics == ()
    assert gateway.presence_ttl + gateway.presence_sweep <= 30


def test_parsed_rules(settings: Any) -> None:
    _gateway(
        settings,
        TOPICS={"room:*": {"join": "any", "presence": "auth.view_user"}},
        TABLES={"public.todos": "staff"},
        BRIDGE=["room:*"],
    )
    gateway = realtime_settings.GATEWAY
    assert gateway.topics == (("room:*", (("join", "any"), ("presence", "auth.view_user"))),)
    assert gateway.tables == (("public.todos", "staff"),)
    assert gateway.bridge == ("room:*",)


@pytest.mark.parametrize(
    ("gateway", "named"),
    [
        ({"TOPICS": {"room:*": {"postgres_changes": "any"}}}, "unknown action 'postgres_changes'"),
        ({"TOPICS": {"room:*": {"join": "everyone"}}}, """['TOPICS']['room:*']['join']"""),
        ({"TABLES": {"todos": "any"}}, """['GATEWAY']['TABLES'] keys"""),
        ({"RATE": 0}, "['GATEWAY']['RATE']"),
        ({"PRESENCE_TTL": 2, "PRESENCE_REFRESH": 3}, "['GATEWAY']['PRESENCE_REFRESH']"),
        ({"AUTHORIZE": "nodots"}, "['GATEWAY']['AUTHORIZE']"),
        ({"TYPO": 1}, "unknown key(s) 'TYPO'"),
    ],
)
def test_malformed_values_name_the_setting(
    settings: Any, gateway: dict[str, Any], named: str
) -> None:
    _gateway(settings, **gateway)
    with pytest.raises(ConfigurationError, match=None) as raised:
        realtime_settings.GATEWAY  # noqa: B018
    assert named in str(raised.value)
    assert "supa_realtime.E007" in [m.id for m in checks.check_settings()]


def test_e008_authorize_not_importable(settings: Any) -> None:
    _gateway(settings, AUTHORIZE="tests.gateway.no_such_module.authorize")
    assert [m.id for m in checks.check_gateway()] == ["supa_realtime.E008"]
    _gateway(settings, AUTHORIZE="tests.gateway.gateway_hooks.authorize")
    assert checks.check_gateway() == []


def test_w003_rows_for_everyone(settings: Any) -> None:
    _gateway(settings, TABLES={"public.todos": "any", "public.notes": "authenticated"})
    messages = checks.check_gateway()
    assert [m.id for m in messages] == ["supa_realtime.W003"]
    assert "public.todos" in messages[0].msg
