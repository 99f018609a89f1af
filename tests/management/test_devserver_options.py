"""How ``realtime_devserver`` merges its options, ``SUPA_REALTIME["DEVSERVER"]`` and defaults."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command

from supa_realtime.devserver import LOCAL_DEV_JWT_SECRET
from supa_realtime.exceptions import ConfigurationError
from supa_realtime.management.commands.realtime_devserver import resolve_options

SQLITE = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
POSTGRES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "app",
        "USER": "web",
        "PASSWORD": "pw-from-django",
        "HOST": "127.0.0.1",
        "PORT": "5433",
    }
}


@pytest.fixture
def devserver_settings(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``configure(**DEVSERVER)``: set SUPA_REALTIME["DEVSERVER"] with no JWT secret in env."""
    monkeypatch.delenv("SUPABASE_JWT_SECRET", raising=False)

    def configure(**devserver: Any) -> None:
        settings.SUPA_REALTIME = {"DEVSERVER": devserver}

    return configure


def test_defaults_without_settings(devserver_settings: Any) -> None:
    devserver_settings()
    resolved = resolve_options({}, SQLITE)
    assert (resolved.host, resolved.port) == ("127.0.0.1", 54321)
    assert resolved.jwt_secret == LOCAL_DEV_JWT_SECRET
    assert resolved.database_url is None
    assert resolved.database_source == "none"
    assert (resolved.publication, resolved.tables) == (None, None)


def test_settings_give_the_defaults(devserver_settings: Any) -> None:
    devserver_settings(
        HOST="127.0.0.2",
        PORT=6000,
        JWT_SECRET="secret-from-settings",
        DATABASE_URL="postgres://u@127.0.0.1:1/db",
        PUBLICATION="supabase_realtime",
    )
    resolved = resolve_options({}, POSTGRES)
    assert (resolved.host, resolved.port) == ("127.0.0.2", 6000)
    assert resolved.jwt_secret == "secret-from-settings"
    assert resolved.database_url == "postgres://u@127.0.0.1:1/db"
    assert resolved.database_source == 'SUPA_REALTIME["DEVSERVER"]["DATABASE_URL"]'
    assert resolved.publication == "supabase_realtime"


def test_options_win_over_settings(devserver_settings: Any) -> None:
    devserver_settings(
        HOST="127.0.0.2",
        PORT=6000,
        JWT_SECRET="secret-from-settings",
        DATABASE_URL="postgres://u@127.0.0.1:1/db",
        PUBLICATION="supabase_realtime",
    )
    options = {
        "host": "127.0.0.3",
        "port": 0,  # 0 is an answer, not "not given"
        "jwt_secret": "secret-from-option",
        "database_url": "host=127.0.0.1 port=2 dbname=other",
        "tables": "public.todos, app.*",
    }
    resolved = resolve_options(options, POSTGRES)
    assert (resolved.host, resolved.port) == ("127.0.0.3", 0)
    assert resolved.jwt_secret == "secret-from-option"
    assert resolved.database_url == "host=127.0.0.1 port=2 dbname=other"
    assert resolved.database_source == "--database-url"
    # Tables on the command line replace the configured publication.
    assert (resolved.publication, resolved.tables) == (None, ("public.todos", "app.*"))


def test_jwt_secret_from_the_environment(
    devserver_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    devserver_settings()
    monkeypatch.setenv("SUPABASE_JWT_SECRET", "secret-from-env")
    assert resolve_options({}, SQLITE).jwt_secret == "secret-from-env"
    assert resolve_options({"jwt_secret": "opt"}, SQLITE).jwt_secret == "opt"


def test_django_default_database_when_postgresql(devserver_settings: Any) -> None:
    devserver_settings()
    resolved = resolve_options({}, POSTGRES)
    assert resolved.database_source == "the Django default database"
    assert resolved.database_url is not None
    assert "dbname=app" in resolved.database_url
    assert "port=5433" in resolved.database_url
    assert "pw-from-django" not in repr(resolved)


def test_no_database_beats_every_source(devserver_settings: Any) -> None:
    devserver_settings(DATABASE_URL="postgres://u@127.0.0.1:1/db")
    resolved = resolve_options({"no_database": True}, POSTGRES)
    assert resolved.database_url is None
    assert resolved.database_source == "none (--no-database)"


def test_sqlite_default_database_is_not_read(devserver_settings: Any) -> None:
    devserver_settings()
    assert resolve_options({}, SQLITE).database_url is None


def test_publication_and_tables_together_are_refused(devserver_settings: Any) -> None:
    devserver_settings()
    with pytest.raises(ConfigurationError):
        resolve_options({"publication": "p", "tables": "public.t"}, SQLITE)
    devserver_settings(PUBLICATION="p", TABLES=["public.t"])
    with pytest.raises(ConfigurationError) as info:
        resolve_options({}, SQLITE)
    assert "SUPA_REALTIME['DEVSERVER']['TABLES']" in str(info.value)


def test_malformed_setting_is_a_command_error(devserver_settings: Any) -> None:
    devserver_settings(DATABASE_URL="")
    with pytest.raises(CommandError) as info:
        call_command("realtime_devserver", "--port", "0")
    assert "DATABASE_URL" in str(info.value)


def test_database_url_and_no_database_exclude_each_other(devserver_settings: Any) -> None:
    devserver_settings()
    with pytest.raises(CommandError):
        call_command("realtime_devserver", "--no-database", "--database-url", "postgres://x/y")
