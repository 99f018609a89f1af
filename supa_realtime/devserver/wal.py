"""`WalReader`: database changes from PostgreSQL's write-ahead log, read the way Supabase does.

Supabase Realtime does not use triggers: its replication poller owns a logical replication slot
with the ``wal2json`` output plugin and calls ``pg_logical_slot_get_changes`` on it every
``poll_interval``. Logical decoding hands out committed transactions only, in commit order, each
whole; rolled-back work never appears. This reader does the same with psycopg 3:

* :meth:`WalReader.start` checks the prerequisites
  (:mod:`~supa_realtime.devserver.prerequisites`), creates the slot, and starts one owned polling
  task;
* every poll fetches up to ``max_changes`` records (whole transactions), shapes each change with
  :func:`~supa_realtime.devserver.wal2json.decode_change` and awaits ``on_change(data)`` once
  per row change, in order;
* :meth:`WalReader.stop` stops the task and drops the slot, so no WAL is held back afterwards.

The slot is not temporary by default: other sessions can see it in ``pg_replication_slots``
and it survives a lost connection, which the reader re-opens with backoff. A process that dies
without :meth:`~WalReader.stop` leaves the slot behind; the start-up log line names it, and
``SELECT pg_drop_replication_slot('<name>')`` removes it.

Which tables are read: every table by default; ``tables=["public.*", "app.todos"]`` keeps only
those (wal2json's ``add-tables`` patterns, ``*`` for any schema or table), ``exclude_tables``
drops some (``filter-tables``), and ``publication="supabase_realtime"`` reads the tables of that
publication at every poll, as Supabase does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict

from ..exceptions import PrerequisiteError
from .prerequisites import DEFAULT_PLUGIN, check_prerequisites, create_slot
from .wal2json import (
    BUILTIN_TYPES,
    DEFAULT_MAX_RECORD_BYTES,
    WAL2JSON_OPTIONS,
    PgType,
    decode_change,
)

__all__ = ["ChangeHandler", "WalReader", "redact_dsn"]

logger = logging.getLogger(__name__)

ChangeHandler = Callable[[dict[str, Any]], Awaitable[object]]
"""Receives each change's ``data`` dict (PROTOCOL.md §4.3)."""

_SESSION_SETTINGS = (
    # Output functions run in our session: fix the text forms the converter expects.
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET bytea_output = 'hex'",
    "SET application_name = 'supa_realtime_wal'",
)
_SLOT_NAME = re.compile(r"^[a-z0-9_]{1,63}$")
_RECONNECT_MAX_DELAY = 2.0
_STOP_TIMEOUT = 5.0
_DROP_TIMEOUT = 10.0


def redact_dsn(dsn: str) -> str:
    """``host=… port=… dbname=… user=…`` of a DSN or URL, never its password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    shown = {k: params[k] for k in ("host", "port", "dbname", "user") if params.get(k)}
    return " ".join(f"{k}={v}" for k, v in shown.items()) or "<libpq defaults>"


def _escape_table_pattern(name: str) -> str:
    return re.sub(r"([\\,.\s])", r"\\\1", name)


def _pattern(entry: str) -> str:
    """``schema.table`` (either may be ``*``; a bare name means ``public.name``) → wal2json."""
    schema, dot, table = entry.partition(".")
    if not dot:
        schema, table = "public", entry
    if not schema or not table:
        raise ValueError(f"table pattern {entry!r} is not schema.table")
    return f"{_escape_table_pattern(schema)}.{_escape_table_pattern(table)}"


class WalReader:
    """Reads committed row changes from a wal2json logical replication slot.

    Args:
        dsn: libpq connection string or URL of the database to read (the slot lives there).
        on_change: awaited with each change's ``data`` dict, one call per row, in commit order.
            An exception it raises is logged and the next change is delivered.
        slot_name: the slot's name; default ``supa_realtime_<random hex>``.
        tables: ``schema.table`` patterns to read (``*`` matches any schema or table);
            None reads every table.
        exclude_tables: patterns never read.
        publication: read the tables of this publication (looked up at every poll), like
            Supabase's ``supabase_realtime``; cannot be combined with ``tables``.
        poll_interval: seconds between polls when the slot had nothing more.
        max_changes: records fetched per poll at most (whole transactions are never split).
        max_record_bytes: the 413 threshold (Supabase's ``poll_max_record_bytes``).
        plugin: the output plugin; only ``wal2json`` produces what the converter reads.
        temporary: make the slot temporary (gone when the connection closes).
    """

    def __init__(
        self,
        dsn: str,
        *,
        on_change: ChangeHandler,
        slot_name: str | None = None,
        tables: Sequence[str] | None = None,
        exclude_tables: Sequence[str] = (),
        publication: str | None = None,
        poll_interval: float = 0.1,
        max_changes: int = 1000,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        plugin: str = DEFAULT_PLUGIN,
        temporary: bool = False,
    ) -> None:
        if publication is not None and tables is not None:
            raise ValueError("give either tables or publication, not both")
        name = slot_name or f"supa_realtime_{secrets.token_hex(6)}"
        if not _SLOT_NAME.match(name):
            raise ValueError(f"slot name {name!r}: use 1-63 lowercase letters, digits or _")
        self.slot_name = name
        self._dsn = dsn
        self._on_change = on_change
        self._tables = [_pattern(t) for t in tables] if tables is not None else None
        self._exclude = [_pattern(t) for t in exclude_tables]
        self._publication = publication
        self._poll_interval = poll_interval
        self._max_changes = max_changes
        self._max_record_bytes = max_record_bytes
        self._plugin = plugin
        self._temporary = temporary
        self._types: dict[int, PgType] = dict(BUILTIN_TYPES)
        self._conn: AsyncConnection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self.changes_delivered = 0
        """Row changes handed to ``on_change`` so far."""

    # lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the polling task is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Check the prerequisites, create the slot and start polling.

        Raises:
            PrerequisiteError: the database cannot serve logical decoding; the message says
                what to change.
        """
        if self._task is not None:
            raise RuntimeError("WalReader is already started")
        conn = await self._connect()
        try:
            await check_prerequisites(conn, plugin=self._plugin)
            if self._publication is not None:
                await self._check_publication(conn)
            await create_slot(conn, self.slot_name, plugin=self._plugin, temporary=self._temporary)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"wal-reader-{self.slot_name}")
        logger.info(
            "WAL reader started: slot %s on %s (plugin %s, tables %s); if this process dies "
            "without stopping, drop the slot with SELECT pg_drop_replication_slot('%s')",
            self.slot_name,
            redact_dsn(self._dsn),
            self._plugin,
            self._describe_tables(),
            self.slot_name,
        )

    async def stop(self) -> None:
        """Stop polling (the change being delivered finishes first) and drop the slot.

        When the database cannot be reached the slot stays; a warning says how to drop it.
        """
        task = self._task
        if task is None:
            return
        self._stopping.set()
        try:
            try:
                await asyncio.wait_for(asyncio.shield(task), _STOP_TIMEOUT)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            self._task = None
            dropped = False
            try:
                await self._drop_slot()
                dropped = True
            except psycopg.Error as exc:
                logger.warning(
                    "WAL reader: could not drop slot %s (%s); it keeps WAL until dropped with "
                    "SELECT pg_drop_replication_slot('%s')",
                    self.slot_name,
                    _one_line(exc),
                    self.slot_name,
                )
            finally:
                if self._conn is not None:
                    await self._conn.close()
                    self._conn = None
        logger.info(
            "WAL reader stopped: slot %s %s (%d changes delivered)",
            self.slot_name,
            "dropped" if dropped else "NOT dropped",
            self.changes_delivered,
        )

    async def __aenter__(self) -> WalReader:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # polling ----------------------------------------------------------------------------

    async def poll(self) -> int:
        """Fetch what the slot holds now (up to ``max_changes`` records) and deliver it.

        The polling task calls this; tests and tools may call it too.

        Returns:
            The number of records fetched from the slot.
        """
        async with self._lock:
            conn = self._conn
            if conn is None:
                raise RuntimeError("WalReader is not started")
            options = await self._options(conn)
            cur = await conn.execute(
                "SELECT data FROM pg_logical_slot_get_changes(%s, NULL, %s, VARIADIC %s::text[])",
                (self.slot_name, self._max_changes, options),
            )
            rows = await cur.fetchall()
            if not rows:
                return 0
            logger.debug(
                "< %d records from slot %s, first: %.200s", len(rows), self.slot_name, rows[0][0]
            )
            changes = [(str(text), json.loads(text)) for (text,) in rows]
            columns = await self._table_columns(conn, changes)
            for text, change in changes:
                await self._deliver(text, change, columns)
            return len(rows)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                fetched = await self.poll()
                failures = 0
            except psycopg.Error as exc:
                failures += 1
                logger.warning(
                    "WAL reader on slot %s: %s; reconnecting", self.slot_name, _one_line(exc)
                )
                await self._reconnect(failures)
                continue
            except Exception:
                failures += 1
                logger.exception("WAL reader on slot %s: poll failed", self.slot_name)
                await self._pause(min(_RECONNECT_MAX_DELAY, 0.1 * 2**failures))
                continue
            if fetched < self._max_changes:
                await self._pause(self._poll_interval)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _deliver(
        self, text: str, change: dict[str, Any], columns: dict[tuple[str, str], list[Any]]
    ) -> None:
        try:
            data = decode_change(
                change,
                self._types,
                table_columns=columns.get((str(change.get("schema")), str(change.get("table")))),
                max_record_bytes=self._max_record_bytes,
                record_bytes=len(text.encode()),
            )
        except Exception:
            logger.exception("WAL reader: cannot convert record %.200s", text)
            return
        if data is None:
            return
        try:
            await self._on_change(data)
        except Exception:
            logger.exception(
                "WAL reader: on_change failed for %s on %s.%s",
                data["type"],
                data["schema"],
                data["table"],
            )
        self.changes_delivered += 1

    # connection and slot ----------------------------------------------------------------

    async def _connect(self) -> AsyncConnection[Any]:
        conn = await AsyncConnection.connect(self._dsn, autocommit=True)
        try:
            for statement in _SESSION_SETTINGS:
                await conn.execute(statement)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _reconnect(self, failures: int) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        while not self._stopping.is_set():
            await self._pause(min(_RECONNECT_MAX_DELAY, 0.05 * 2**failures))
            if self._stopping.is_set():
                return
            try:
                conn = await self._connect()
                cur = await conn.execute(
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (self.slot_name,)
                )
                if await cur.fetchone() is None:
                    logger.warning(
                        "WAL reader: slot %s is gone; creating it again (changes made meanwhile "
                        "are lost)",
                        self.slot_name,
                    )
                    await create_slot(
                        conn, self.slot_name, plugin=self._plugin, temporary=self._temporary
                    )
            except (psycopg.Error, PrerequisiteError) as exc:
                failures += 1
                logger.warning(
                    "WAL reader on slot %s: reconnect failed: %s", self.slot_name, _one_line(exc)
                )
                continue
            self._conn = conn
            logger.info("WAL reader reconnected: slot %s", self.slot_name)
            return

    async def _drop_slot(self) -> None:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                await conn.close()
            conn = self._conn = await self._connect()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _DROP_TIMEOUT
        while True:
            try:
                await conn.execute("SELECT pg_drop_replication_slot(%s)", (self.slot_name,))
                return
            except psycopg.errors.UndefinedObject:
                return  # a temporary slot goes with its connection
            except psycopg.errors.ObjectInUse:
                # A poll interrupted by cancellation may still hold it for a moment.
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)

    # filters and metadata ---------------------------------------------------------------

    def _describe_tables(self) -> str:
        if self._publication is not None:
            return f"of publication {self._publication}"
        shown = ", ".join(self._tables) if self._tables is not None else "all"
        if self._exclude:
            shown += " except " + ", ".join(self._exclude)
        return shown

    async def _check_publication(self, conn: AsyncConnection[Any]) -> None:
        cur = await conn.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (self._publication,)
        )
        if await cur.fetchone() is None:
            raise PrerequisiteError(
                f"publication {self._publication!r} does not exist: create it with CREATE "
                f'PUBLICATION "{self._publication}" and add tables with ALTER PUBLICATION '
                f'"{self._publication}" ADD TABLE <table> (or read every table by not giving '
                "a publication)",
                setting="publication",
            )

    async def _options(self, conn: AsyncConnection[Any]) -> list[str]:
        options = [item for pair in WAL2JSON_OPTIONS.items() for item in pair]
        tables = self._tables
        if self._publication is not None:
            cur = await conn.execute(
                "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
                (self._publication,),
            )
            tables = [
                f"{_escape_table_pattern(s)}.{_escape_table_pattern(t)}"
                for s, t in await cur.fetchall()
            ]
        if tables is not None:
            if tables:
                options += ["add-tables", ",".join(tables)]
            else:
                options += ["filter-tables", "*.*"]  # nothing published: consume, deliver none
        if self._exclude:
            options += ["filter-tables", ",".join(self._exclude)]
        return options

    async def _table_columns(
        self, conn: AsyncConnection[Any], changes: Iterable[tuple[str, dict[str, Any]]]
    ) -> dict[tuple[str, str], list[Any]]:
        """``(name, typname)`` of each table's columns in attnum order, read now from
        ``pg_attribute`` as Supabase does, for the tables in this batch."""
        wanted = {
            (str(change["schema"]), str(change["table"]))
            for _, change in changes
            if "schema" in change and "table" in change
        }
        type_oids = {
            int(column["typeoid"])
            for _, change in changes
            for key in ("columns", "identity")
            for column in change.get(key) or ()
            if isinstance(column.get("typeoid"), int)
        }
        if not wanted:
            return {}
        schemas, names = zip(*sorted(wanted), strict=True)
        cur = await conn.execute(
            "SELECT n.nspname, c.relname, a.attname, a.atttypid::int "
            "FROM unnest(%s::text[], %s::text[]) AS t(s, r) "
            "JOIN pg_namespace n ON n.nspname = t.s "
            "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.r "
            "JOIN pg_attribute a ON a.attrelid = c.oid "
            "WHERE a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY n.nspname, c.relname, a.attnum",
            (list(schemas), list(names)),
        )
        attributes = await cur.fetchall()
        await self._resolve_types(conn, type_oids | {int(row[3]) for row in attributes})
        result: dict[tuple[str, str], list[Any]] = {}
        for schema, table, column, type_oid in attributes:
            pgtype = self._types.get(int(type_oid))
            result.setdefault((schema, table), []).append(
                (column, pgtype.name if pgtype else "unknown")
            )
        return result

    async def _resolve_types(self, conn: AsyncConnection[Any], oids: set[int]) -> None:
        """Add the unknown ``oids`` (and the domains' bases and arrays' elements they need)
        to the cached oid → :class:`PgType` map."""
        rows: dict[int, tuple[str, int, int, str]] = {}  # name, domain base, element, delim
        missing = {oid for oid in oids if oid not in self._types}
        for _ in range(8):  # domain → array → element chains are short
            if not missing:
                break
            cur = await conn.execute(
                "SELECT oid::int, typname::text, typtype::text, typbasetype::int, typelem::int, "
                "typdelim::text, typcategory::text FROM pg_type WHERE oid = ANY(%s)",
                (sorted(missing),),
            )
            for oid, name, typtype, base, elem, delim, category in await cur.fetchall():
                rows[oid] = (
                    name,
                    base if typtype == "d" else 0,
                    elem if category == "A" else 0,
                    delim,
                )
            missing = {
                ref
                for _, base, elem, _ in rows.values()
                for ref in (base, elem)
                if ref and ref not in self._types and ref not in rows
            }

        def build(oid: int, depth: int = 0) -> PgType:
            known = self._types.get(oid)
            if known is not None:
                return known
            if oid not in rows or depth > 8:
                return PgType(f"oid:{oid}")
            name, base, elem, delim = rows[oid]
            if base:
                base_type = build(base, depth + 1)
                pgtype = PgType(
                    name, base=base_type.converts_as, element=base_type.element, delimiter=delim
                )
            elif elem:
                pgtype = PgType(name, element=build(elem, depth + 1), delimiter=delim)
            else:
                pgtype = PgType(name, delimiter=delim)
            self._types[oid] = pgtype
            return pgtype

        for oid in list(rows):
            build(oid)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
