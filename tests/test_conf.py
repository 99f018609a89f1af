"""The SUPA_REALTIME settings object: defaults, environment, lazy reads, exact errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from supa_realtime.conf import (
    DEFAULTS,
    SUBSCRIPTION_KEYS,
    ConfigurationError,
    DevServerSettings,
    PostgresChangesBinding,
    ReconnectSettings,
    Subscription,
)
from supa_realtime.conf import settings as realtime_settings

SECRET = "eyJ-very-secret-server-key"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("SUPABASE_URL", "SUPABASE_KEY", "SUPABASE_JWT_SECRET", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def configure(settings: Any, **values: Any) -> None:
    settings.SUPA_REALTIME = values


def test_defaults(settings: Any, clean_env: pytest.MonkeyPatch) -> None:
    configure(settings)
    assert realtime_settings.URL is None
    assert realtime_settings.KEY is None
    assert realtime_settings.REDIS_URL == "redis://127.0.0.1:6379/0"
    assert realtime_settings.SUBSCRIPTIONS == ()
    assert realtime_settings.CHANNEL_LAYER == "default"
    assert realtime_settings.HEARTBEAT_INTERVAL == 25.0
    assert realtime_settings.RECONNECT == ReconnectSettings(1.0, 10.0, None)
    assert realtime_settings.VSN == "2.0.0"
    assert realtime_settings.PUSH_TIMEOUT == 10.0
    assert realtime_settings.DEVSERVER == DevServerSettings("127.0.0.1", 54321, None)
    assert realtime_settings.unknown_keys == ()


def test_missing_setting_means_defaults(settings: Any, clean_env: pytest.MonkeyPatch) -> None:
    del settings.SUPA_REALTIME
    assert realtime_settings.VSN == DEFAULTS["VSN"]


def test_environment_defaults(settings: Any, clean_env: pytest.MonkeyPatch) -> None:
    configure(settings)
    clean_env.setenv("SUPABASE_URL", "https://abc.supabase.co")
    clean_env.setenv("SUPABASE_KEY", SECRET)
    clean_env.setenv("SUPABASE_JWT_SECRET", "jwt-secret")
    clean_env.setenv("REDIS_URL", "redis://127.0.0.1:7000/1")
    assert realtime_settings.URL == "https://abc.supabase.co"
    assert realtime_settings.KEY == SECRET
    assert realtime_settings.DEVSERVER.jwt_secret == "jwt-secret"
    assert realtime_settings.REDIS_URL == "redis://127.0.0.1:7000/1"


def test_explicit_settings_win_over_environment(
    settings: Any, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("SUPABASE_URL", "https://env.supabase.co")
    clean_env.setenv("SUPABASE_KEY", "env-key")
    configure(settings, URL="https://set.supabase.co", KEY="set-key")
    assert realtime_settings.URL == "https://set.supabase.co"
    assert realtime_settings.KEY == "set-key"


def test_read_at_access_time_with_override_settings(clean_env: pytest.MonkeyPatch) -> None:
    with override_settings(SUPA_REALTIME={"VSN": "1.0.0"}):
        assert realtime_settings.VSN == "1.0.0"
    with override_settings(SUPA_REALTIME={"VSN": "2.0.0"}):
        assert realtime_settings.VSN == "2.0.0"


def test_subscriptions_are_parsed(settings: Any) -> None:
    configure(
        settings,
        SUBSCRIPTIONS=[
            "lobby",
            {
                "topic": "realtime:room1",
                "broadcast": ["msg", "typing"],
                "presence": True,
                "private": True,
                "postgres_changes": [
                    {"event": "insert", "table": "todos", "filter": "id=eq.1"},
                    {"schema": "audit"},
                ],
            },
        ],
    )
    lobby, room = realtime_settings.SUBSCRIPTIONS
    assert lobby == Subscription(topic="lobby")
    assert lobby.full_topic == "realtime:lobby"
    assert lobby.wants_broadcast("anything")
    assert room.full_topic == "realtime:room1"
    assert room.broadcast == ("msg", "typing")
    assert room.wants_broadcast("msg")
    assert not room.wants_broadcast("other")
    assert room.presence
    assert room.private
    assert room.postgres_changes == (
        PostgresChangesBinding(event="INSERT", table="todos", filter="id=eq.1"),
        PostgresChangesBinding(schema="audit"),
    )
    assert room.postgres_changes[0].as_config() == {
        "event": "INSERT",
        "schema": "public",
        "table": "todos",
        "filter": "id=eq.1",
    }
    assert room.postgres_changes[1].as_config() == {"event": "*", "schema": "audit"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"SUBSCRIPTIONS": "room1"}, r"SUPA_REALTIME\['SUBSCRIPTIONS'\] must be a list"),
        ({"SUBSCRIPTIONS": [42]}, r"SUPA_REALTIME\['SUBSCRIPTIONS'\]\[0\] must be a dict"),
        ({"SUBSCRIPTIONS": [{}]}, r"\['SUBSCRIPTIONS'\]\[0\] has no 'topic'"),
        ({"SUBSCRIPTIONS": [{"topic": 1}]}, r"\[0\]\['topic'\] must be a string"),
        (
            {"SUBSCRIPTIONS": ["ok", {"topic": "x", "presense": True}]},
            r"\['SUBSCRIPTIONS'\]\[1\] has unknown key\(s\) 'presense'",
        ),
        ({"SUBSCRIPTIONS": [{"topic": "x", "broadcast": "msg"}]}, r"\[0\]\['broadcast'\] must be"),
        ({"SUBSCRIPTIONS": [{"topic": "x", "broadcast": [""]}]}, r"\[0\]\['broadcast'\] must be"),
        ({"SUBSCRIPTIONS": [{"topic": "x", "presence": "yes"}]}, r"\[0\]\['presence'\] must be"),
        ({"SUBSCRIPTIONS": [{"topic": "x", "private": 1}]}, r"\[0\]\['private'\] must be"),
        (
            {"SUBSCRIPTIONS": [{"topic": "x", "postgres_changes": {"table": "t"}}]},
            r"\[0\]\['postgres_changes'\] must be a list",
        ),
        (
            {"SUBSCRIPTIONS": [{"topic": "x", "postgres_changes": [{"event": "UPSERT"}]}]},
            r"\[0\]\['postgres_changes'\]\[0\]\['event'\] must be one of",
        ),
        (
            {"SUBSCRIPTIONS": [{"topic": "x", "postgres_changes": [{"filter": "id=eq.1"}]}]},
            r"\[0\]\['postgres_changes'\]\[0\]\['filter'\] needs a 'table'",
        ),
        (
            {"SUBSCRIPTIONS": [{"topic": "x", "postgres_changes": [{"tabel": "t"}]}]},
            r"\[0\]\['postgres_changes'\]\[0\] has unknown key\(s\) 'tabel'",
        ),
        (
            {
                "SUBSCRIPTIONS": [
                    {"topic": "x", "postgres_changes": [{"table": "t", "filter": "id=foo.1"}]}
                ]
            },
            r"\[0\]\['postgres_changes'\]\[0\]\['filter'\] would be refused by Supabase "
            r"Realtime: Error parsing `filter` params",
        ),
        (
            {"SUBSCRIPTIONS": [{"topic": "x", "postgres_changes": [{"schema": ""}]}]},
            r"\[0\]\['postgres_changes'\]\[0\]\['schema'\] must be a non-empty string",
        ),
    ],
)
def test_malformed_subscriptions_name_the_entry(
    settings: Any, values: dict[str, Any], message: str
) -> None:
    configure(settings, **values)
    with pytest.raises(ConfigurationError, match=message):
        realtime_settings.SUBSCRIPTIONS  # noqa: B018


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("URL", "not a url", r"SUPA_REALTIME\['URL'\] must be an http\(s\)://"),
        ("URL", "ftp://x", r"SUPA_REALTIME\['URL'\] must be an http\(s\)://"),
        ("URL", 5, r"SUPA_REALTIME\['URL'\] must be a non-empty string"),
        ("REDIS_URL", "http://x", r"SUPA_REALTIME\['REDIS_URL'\] must be a redis://"),
        ("CHANNEL_LAYER", "", r"SUPA_REALTIME\['CHANNEL_LAYER'\] must be a non-empty string"),
        ("HEARTBEAT_INTERVAL", 0, r"SUPA_REALTIME\['HEARTBEAT_INTERVAL'\] must be a positive"),
        ("HEARTBEAT_INTERVAL", True, r"SUPA_REALTIME\['HEARTBEAT_INTERVAL'\] must be a positive"),
        ("PUSH_TIMEOUT", "10", r"SUPA_REALTIME\['PUSH_TIMEOUT'\] must be a positive"),
        ("VSN", "3.0.0", r"SUPA_REALTIME\['VSN'\] must be one of '1.0.0', '2.0.0'"),
        ("RECONNECT", [], r"SUPA_REALTIME\['RECONNECT'\] must be a dict"),
        ("RECONNECT", {"MAX_DELAI": 3}, r"SUPA_REALTIME\['RECONNECT'\] has unknown key\(s\)"),
        ("RECONNECT", {"INITIAL_DELAY": -1}, r"\['RECONNECT'\]\['INITIAL_DELAY'\] must be"),
        ("RECONNECT", {"MAX_DELAY": 0.5}, r"\['RECONNECT'\]\['MAX_DELAY'\] \(0.5\) must not"),
        ("RECONNECT", {"MAX_RETRIES": -1}, r"\['RECONNECT'\]\['MAX_RETRIES'\] must be None"),
        ("DEVSERVER", {"PORT": 70000}, r"\['DEVSERVER'\]\['PORT'\] must be an integer"),
        ("DEVSERVER", {"HOST": ""}, r"\['DEVSERVER'\]\['HOST'\] must be a non-empty string"),
    ],
)
def test_malformed_values_name_the_setting(
    settings: Any, name: str, value: Any, message: str
) -> None:
    configure(settings, **{name: value})
    with pytest.raises(ConfigurationError, match=message):
        getattr(realtime_settings, name)


def test_partial_nested_dicts_keep_other_defaults(settings: Any) -> None:
    configure(settings, RECONNECT={"MAX_RETRIES": 3}, DEVSERVER={"PORT": 4100})
    assert realtime_settings.RECONNECT == ReconnectSettings(1.0, 10.0, 3)
    assert realtime_settings.DEVSERVER.port == 4100
    assert realtime_settings.DEVSERVER.host == "127.0.0.1"


def test_setting_itself_must_be_a_dict(settings: Any) -> None:
    settings.SUPA_REALTIME = ["URL"]
    with pytest.raises(ConfigurationError, match="SUPA_REALTIME must be a dict"):
        realtime_settings.URL  # noqa: B018


def test_unknown_top_level_keys_are_listed(settings: Any) -> None:
    configure(settings, URL="https://a.supabase.co", SUBSCRIPTION=[])
    assert realtime_settings.unknown_keys == ("SUBSCRIPTION",)


def test_secrets_never_shown(settings: Any, clean_env: pytest.MonkeyPatch) -> None:
    configure(settings, KEY=SECRET, DEVSERVER={"JWT_SECRET": SECRET})
    assert SECRET not in repr(realtime_settings)
    assert SECRET not in repr(realtime_settings.DEVSERVER)
    configure(settings, KEY=[SECRET])
    with pytest.raises(ConfigurationError, match=r"SUPA_REALTIME\['KEY'\]") as excinfo:
        realtime_settings.KEY  # noqa: B018
    assert SECRET not in str(excinfo.value)
    configure(settings, DEVSERVER={"JWT_SECRET": [SECRET]})
    with pytest.raises(ConfigurationError, match=r"\['JWT_SECRET'\]") as excinfo:
        realtime_settings.DEVSERVER  # noqa: B018
    assert SECRET not in str(excinfo.value)


def test_long_values_are_truncated_in_errors(settings: Any) -> None:
    configure(settings, VSN="9" * 500)
    with pytest.raises(ConfigurationError) as excinfo:
        realtime_settings.VSN  # noqa: B018
    assert len(str(excinfo.value)) < 200


def test_readme_documents_every_setting() -> None:
    """The README's settings table lists every key of DEFAULTS, nested keys included."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = {line.split("|")[1].strip() for line in readme.splitlines() if line.startswith("| `")}
    expected = set()
    for key, default in DEFAULTS.items():
        expected.add(f"`{key}`")
        if isinstance(default, dict):
            expected.update(f'`{key}["{sub}"]`' for sub in default)
    expected.update(f"`{key}`" for key in SUBSCRIPTION_KEYS)
    assert expected <= rows, sorted(expected - rows)
