"""Which PostgreSQL the local server reads changes from: a Django ``DATABASES`` entry → DSN.

Pure functions (no Django import): the management command passes
``django.db.connections.databases["default"]`` (or another alias) and gets a libpq
connection string for the WAL reader, or None when that database is not PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg.conninfo import make_conninfo

__all__ = ["POSTGRES_ENGINES", "dsn_from_django"]

POSTGRES_ENGINES = frozenset(
    {"django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis"}
)
"""Django database engines backed by PostgreSQL."""

# Keys of a Django DATABASES entry's OPTIONS that are Django's own, not libpq parameters.
_DJANGO_ONLY_OPTIONS = frozenset(
    {
        "assume_role",
        "cursor_factory",
        "isolation_level",
        "pool",
        "server_side_binding",
        "context",
        "prepare_threshold",
    }
)


def dsn_from_django(database: Mapping[str, Any]) -> str | None:
    """Build a libpq DSN from one Django ``DATABASES`` entry.

    ``NAME``, ``USER``, ``PASSWORD``, ``HOST`` and ``PORT`` become ``dbname``, ``user``,
    ``password``, ``host`` and ``port``; libpq parameters in ``OPTIONS`` (``sslmode``,
    ``service``, ``options`` …) are kept, Django's own (``pool``, ``isolation_level`` …)
    dropped. Empty values are left out so that libpq's defaults and environment apply.

    Args:
        database: the entry, e.g. ``connections.databases["default"]``.

    Returns:
        The DSN, or None when the entry's ``ENGINE`` is not PostgreSQL.
    """
    if database.get("ENGINE") not in POSTGRES_ENGINES:
        return None
    params: dict[str, Any] = {
        "dbname": database.get("NAME"),
        "user": database.get("USER"),
        "password": database.get("PASSWORD"),
        "host": database.get("HOST"),
        "port": database.get("PORT"),
    }
    options = database.get("OPTIONS") or {}
    for key, value in options.items():
        if key not in _DJANGO_ONLY_OPTIONS:
            params[key] = value
    return make_conninfo(**{k: str(v) for k, v in params.items() if v not in (None, "")})
