"""System checks: one test per id, plus a test that ids are unique and stable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import CheckMessage, run_checks

from supa_realtime import checks

REDIS_LAYER = {
    "BACKEND": "channels_redis.core.RedisChannelLayer",
    "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379/0", "socket_timeout": 30}]},
}
SECRET = "eyJ-very-secret-server-key"


@pytest.fixture(autouse=True)
def good_settings(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("SUPABASE_URL", "SUPABASE_KEY", "SUPABASE_JWT_SECRET", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    settings.SUPA_REALTIME = {"URL": "https://abc.supabase.co", "KEY": SECRET}
    settings.CHANNEL_LAYERS = {"default": REDIS_LAYER}
    return settings


def ids() -> list[str]:
    return [m.id or "" for m in run_checks() if (m.id or "").startswith("supa_realtime.")]


def only(check_id: str) -> CheckMessage:
    found = [m for m in run_checks() if m.id and m.id.startswith("supa_realtime.")]
    assert [m.id for m in found] == [check_id], [str(m) for m in found]
    return found[0]


def test_good_settings_pass() -> None:
    assert ids() == []


def test_ids_are_unique_and_well_formed() -> None:
    assert len(set(checks.CHECK_IDS)) == len(checks.CHECK_IDS)
    assert all(re.fullmatch(r"supa_realtime\.[EW]\d{3}", i) for i in checks.CHECK_IDS)
    source = Path(checks.__file__).read_text()
    assert sorted(set(re.findall(r'id="(supa_realtime\.[EW]\d{3})"', source))) == sorted(
        checks.CHECK_IDS
    )


def test_e001_missing_url(settings: Any) -> None:
    settings.SUPA_REALTIME = {"KEY": SECRET}
    message = only("supa_realtime.E001")
    assert message.hint is not None
    assert 'SUPA_REALTIME["URL"]' in message.hint
    assert "SUPABASE_URL" in message.hint


def test_e001_satisfied_by_environment(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SUPA_REALTIME = {"KEY": SECRET}
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co")
    assert ids() == []


def test_e002_missing_key(settings: Any) -> None:
    settings.SUPA_REALTIME = {"URL": "https://abc.supabase.co"}
    message = only("supa_realtime.E002")
    assert message.hint is not None
    assert 'SUPA_REALTIME["KEY"]' in message.hint
    assert "SUPABASE_KEY" in message.hint


def test_e003_no_channel_layers(settings: Any) -> None:
    del settings.CHANNEL_LAYERS
    message = only("supa_realtime.E003")
    assert message.hint is not None
    assert 'CHANNEL_LAYERS["default"]' in message.hint


def test_e003_alias_missing(settings: Any) -> None:
    settings.SUPA_REALTIME = {**settings.SUPA_REALTIME, "CHANNEL_LAYER": "relay"}
    message = only("supa_realtime.E003")
    assert "'relay'" in message.msg
    assert message.hint is not None
    assert 'SUPA_REALTIME["CHANNEL_LAYER"]' in message.hint


def test_w001_in_memory_layer(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    message = only("supa_realtime.W001")
    assert message.hint is not None
    assert "channels_redis" in message.hint


@pytest.mark.parametrize(
    "host",
    [
        {"address": "redis://127.0.0.1:6379/0", "socket_timeout": 5},
        {"address": "redis://127.0.0.1:6379/0", "socket_timeout": 2.5},
    ],
)
def test_w004_read_timeout_no_longer_than_blocking_receive(settings: Any, host: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": {**REDIS_LAYER, "CONFIG": {"hosts": [host]}}}
    message = only("supa_realtime.W004")
    assert 'CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]' in message.msg
    assert message.hint is not None
    assert '"socket_timeout": 30' in message.hint


def test_w004_plain_url_follows_redis_py_default(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": {**REDIS_LAYER, "CONFIG": {"hosts": ["redis://h:1"]}}}
    expected = ["supa_realtime.W004"] if checks._default_read_timeout() is not None else []
    assert ids() == expected


def test_w004_long_or_no_timeout_passes(settings: Any) -> None:
    hosts = [{"address": "redis://h:1", "socket_timeout": None}, {"address": "redis://h:2"}]
    hosts[1]["socket_timeout"] = 30
    settings.CHANNEL_LAYERS = {"default": {**REDIS_LAYER, "CONFIG": {"hosts": hosts}}}
    assert ids() == []


def test_e004_malformed_subscription(settings: Any) -> None:
    settings.SUPA_REALTIME = {
        **settings.SUPA_REALTIME,
        "SUBSCRIPTIONS": [{"topic": "a"}, {"topic": "b", "presence": "yes"}],
    }
    message = only("supa_realtime.E004")
    assert "['SUBSCRIPTIONS'][1]['presence']" in message.msg


def test_e005_topic_with_no_group(settings: Any) -> None:
    settings.SUPA_REALTIME = {**settings.SUPA_REALTIME, "SUBSCRIPTIONS": ["room1", "realtime:"]}
    message = only("supa_realtime.E005")
    assert '["SUBSCRIPTIONS"][1]["topic"]' in message.msg
    assert "TopicNameRequired" in message.msg


def test_e006_duplicate_topic(settings: Any) -> None:
    settings.SUPA_REALTIME = {
        **settings.SUPA_REALTIME,
        "SUBSCRIPTIONS": ["room1", {"topic": "realtime:room1", "presence": True}],
    }
    message = only("supa_realtime.E006")
    assert '["SUBSCRIPTIONS"][1]' in message.msg
    assert "entry 0" in message.msg


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("HEARTBEAT_INTERVAL", -1, "SUPA_REALTIME['HEARTBEAT_INTERVAL']"),
        ("VSN", "3", "SUPA_REALTIME['VSN']"),
        ("RECONNECT", {"MAX_RETRIES": "x"}, "SUPA_REALTIME['RECONNECT']['MAX_RETRIES']"),
        ("URL", "nope", "SUPA_REALTIME['URL']"),
    ],
)
def test_e007_malformed_value(settings: Any, name: str, value: Any, named: str) -> None:
    settings.SUPA_REALTIME = {**settings.SUPA_REALTIME, name: value}
    message = only("supa_realtime.E007")
    assert named in message.msg


def test_e007_setting_not_a_dict(settings: Any) -> None:
    settings.SUPA_REALTIME = "https://abc.supabase.co"
    found = [m.id for m in run_checks() if (m.id or "").startswith("supa_realtime.")]
    assert "supa_realtime.E007" in found


def test_w002_unknown_key(settings: Any) -> None:
    settings.SUPA_REALTIME = {**settings.SUPA_REALTIME, "SUBSCRIPTION": []}
    message = only("supa_realtime.W002")
    assert "'SUBSCRIPTION'" in message.msg


def test_secret_key_never_in_messages(settings: Any) -> None:
    settings.SUPA_REALTIME = {"URL": "nope", "KEY": SECRET, "VSN": "x", "SUBSCRIPTIONS": [1]}
    text = " ".join(f"{m.msg} {m.hint}" for m in run_checks())
    assert SECRET not in text


def test_manage_py_check_reports_ids() -> None:
    """The checks are registered by the app config and run by ``manage.py check``."""
    root = Path(__file__).resolve().parent.parent
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "SUPA_REALTIME_DEMO_DIR": str(root / ".demo"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "supa_realtime.E001" in result.stderr
    assert "supa_realtime.E002" in result.stderr
