"""Django DATABASES entries → the DSN the WAL reader connects with."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from supa_realtime.devserver.database import dsn_from_django


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "app",
                "USER": "web",
                "PASSWORD": "pw with 'quotes'",
                "HOST": "127.0.0.1",
                "PORT": 5433,
            },
            {
                "dbname": "app",
                "user": "web",
                "password": "pw with 'quotes'",
                "host": "127.0.0.1",
                "port": "5433",
            },
        ),
        (
            {
                "ENGINE": "django.contrib.gis.db.backends.postgis",
                "NAME": "geo",
                "HOST": "",
                "PORT": "",
                "OPTIONS": {"sslmode": "require", "pool": True, "isolation_level": 1},
            },
            {"dbname": "geo", "sslmode": "require"},
        ),
        (
            {"ENGINE": "django.db.backends.postgresql", "NAME": "", "OPTIONS": {"service": "s"}},
            {"service": "s"},
        ),
    ],
)
def test_postgres_entries(entry: dict[str, Any], expected: dict[str, str]) -> None:
    dsn = dsn_from_django(entry)
    assert dsn is not None
    assert conninfo_to_dict(dsn) == expected


@pytest.mark.parametrize("engine", ["django.db.backends.sqlite3", "django.db.backends.mysql", None])
def test_other_engines_give_none(engine: str | None) -> None:
    assert dsn_from_django({"ENGINE": engine, "NAME": "x"}) is None


def test_dsn_reaches_the_database(postgres_dsn: str) -> None:
    params = conninfo_to_dict(postgres_dsn)
    entry = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": params["dbname"],
        "USER": params["user"],
        "HOST": params["host"],
        "PORT": params["port"],
        "OPTIONS": {"pool": False, "application_name": "from_django"},
    }
    dsn = dsn_from_django(entry)
    assert dsn is not None
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT current_database(), current_setting('application_name')"
        ).fetchone()
    assert row == (params["dbname"], "from_django")
