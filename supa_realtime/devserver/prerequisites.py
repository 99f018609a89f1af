"""What PostgreSQL needs before the WAL reader can decode changes, checked with errors that say
what to do.

:func:`check_prerequisites` looks, in order, at: a primary (not a standby), ``wal_level``, the
role's ``REPLICATION`` privilege, the ``output_plugin_libraries`` allow-list (on builds that have
it), and free replication slots. :func:`create_slot` creates the slot and turns the errors
PostgreSQL can still give at that point (the plugin is not installed, the last slot was just
taken, the name is in use) into the same kind of error. Every error is a
:class:`~supa_realtime.exceptions.PrerequisiteError` whose ``setting`` names what to change.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import AsyncConnection

from ..exceptions import PrerequisiteError

__all__ = ["DEFAULT_PLUGIN", "check_prerequisites", "create_slot"]

logger = logging.getLogger(__name__)

DEFAULT_PLUGIN = "wal2json"

_HOSTED_WAL_LEVEL = (
    "On a hosted database change it in the provider's parameters instead (Amazon RDS and "
    "Aurora: rds.logical_replication = 1 in the parameter group; Google Cloud SQL: the "
    "cloudsql.logical_decoding flag; Azure Database for PostgreSQL: the wal_level server "
    "parameter); Supabase projects already run with wal_level = logical."
)


async def _value(conn: AsyncConnection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return None if row is None else row[0]


async def _major_version(conn: AsyncConnection[Any]) -> int:
    return int(await _value(conn, "SELECT current_setting('server_version_num')::int")) // 10000


async def check_prerequisites(conn: AsyncConnection[Any], *, plugin: str = DEFAULT_PLUGIN) -> None:
    """Check that this connection's database can give a logical replication slot to ``plugin``.

    Args:
        conn: an open connection, as the role the reader will use.
        plugin: the output plugin the slot will use.

    Raises:
        PrerequisiteError: the first prerequisite that is not met, with what to do about it.
    """
    if await _value(conn, "SELECT pg_is_in_recovery()"):
        raise PrerequisiteError(
            "the database is a standby (in recovery); PostgreSQL before 16 decodes WAL only on "
            "the primary: point the local server at the primary",
            setting="primary",
        )

    wal_level = await _value(conn, "SELECT current_setting('wal_level')")
    if wal_level != "logical":
        raise PrerequisiteError(
            f"wal_level is {wal_level!r} but reading changes needs 'logical': set "
            "wal_level = logical in postgresql.conf (or run ALTER SYSTEM SET wal_level = "
            "'logical') and restart PostgreSQL. " + _HOSTED_WAL_LEVEL,
            setting="wal_level",
        )

    cur = await conn.execute(
        "SELECT current_user, rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user"
    )
    role_row = await cur.fetchone()
    if role_row is not None and not (role_row[1] or role_row[2]):
        role = str(role_row[0]).replace('"', '""')
        raise PrerequisiteError(
            f"role {role_row[0]!r} lacks the REPLICATION privilege needed to create and read a "
            f'replication slot: as a superuser run ALTER ROLE "{role}" REPLICATION; or '
            "connect as a role that has it",
            setting="REPLICATION",
        )

    try:
        allowed = await _value(conn, "SELECT current_setting('output_plugin_libraries', true)")
    except psycopg.errors.InsufficientPrivilege:
        allowed = None  # only superusers may read it; create_slot reports a refusal
    if allowed is not None:
        names = [name.strip().strip('"') for name in str(allowed).split(",")]
        if plugin not in names:
            suggestion = ", ".join([name for name in names if name] + [plugin])
            raise PrerequisiteError(
                f"output plugin {plugin!r} is not in output_plugin_libraries ({allowed!r}), "
                f"so PostgreSQL refuses it: set output_plugin_libraries = '{suggestion}' in "
                "postgresql.conf and reload (SELECT pg_reload_conf())",
                setting="output_plugin_libraries",
            )

    await _check_free_slot(conn)


async def _check_free_slot(conn: AsyncConnection[Any]) -> None:
    limit = int(await _value(conn, "SELECT current_setting('max_replication_slots')::int"))
    cur = await conn.execute(
        "SELECT slot_name, plugin, database, active FROM pg_replication_slots ORDER BY slot_name"
    )
    slots = await cur.fetchall()
    if len(slots) < limit:
        return
    raise PrerequisiteError(_slots_full_message(limit, slots), setting="max_replication_slots")


def _slots_full_message(limit: int, slots: list[tuple[Any, ...]]) -> str:
    listing = "; ".join(
        f"{name} ({plugin or 'physical'}, database {database or '-'}, "
        f"{'active' if active else 'inactive'})"
        for name, plugin, database, active in slots
    )
    return (
        f"all replication slots are in use (max_replication_slots = {limit}): raise "
        "max_replication_slots in postgresql.conf and restart PostgreSQL, or drop a slot "
        "nobody reads with SELECT pg_drop_replication_slot('<name>'). "
        f"Existing slots: {listing or 'none'}"
    )


async def create_slot(
    conn: AsyncConnection[Any],
    slot_name: str,
    *,
    plugin: str = DEFAULT_PLUGIN,
    temporary: bool = False,
) -> str:
    """Create logical replication slot ``slot_name`` for ``plugin``; return its consistent LSN.

    Raises:
        PrerequisiteError: the plugin is not installed or not allowed, the role may not use
            slots, no slot is free, or a slot of that name exists.
    """
    try:
        cur = await conn.execute(
            "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, %s, %s)",
            (slot_name, plugin, temporary),
        )
        row = await cur.fetchone()
    except psycopg.errors.UndefinedFile as exc:
        major = await _major_version(conn)
        raise PrerequisiteError(
            f"output plugin {plugin!r} is not installed in the PostgreSQL server "
            f"({exc.diag.message_primary}): install the package for the server's major "
            f"version {major}, e.g. apt-get install postgresql-{major}-{plugin} on Debian or "
            f"Ubuntu (PGDG: yum install {plugin}_{major}), then retry",
            setting=plugin,
        ) from exc
    except psycopg.errors.ConfigurationLimitExceeded as exc:
        limit = int(await _value(conn, "SELECT current_setting('max_replication_slots')::int"))
        cur = await conn.execute(
            "SELECT slot_name, plugin, database, active FROM pg_replication_slots "
            "ORDER BY slot_name"
        )
        raise PrerequisiteError(
            _slots_full_message(limit, await cur.fetchall()), setting="max_replication_slots"
        ) from exc
    except psycopg.errors.DuplicateObject as exc:
        raise PrerequisiteError(
            f"a replication slot named {slot_name!r} already exists: choose another slot name "
            f"or, if nobody reads it, drop it with SELECT pg_drop_replication_slot('{slot_name}')",
            setting="slot_name",
        ) from exc
    except psycopg.errors.InsufficientPrivilege as exc:
        raise PrerequisiteError(
            f"PostgreSQL refused the replication slot: {exc.diag.message_primary} "
            f"({exc.diag.message_hint or 'grant the role REPLICATION'})",
            setting="REPLICATION",
        ) from exc
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        raise PrerequisiteError(
            f"PostgreSQL refused the replication slot: {exc.diag.message_primary}: set "
            "wal_level = logical and max_replication_slots > 0 in postgresql.conf and restart",
            setting="wal_level",
        ) from exc
    logger.debug("created replication slot %s (plugin %s)", slot_name, plugin)
    return "" if row is None else str(row[0])
