"""PostgreSQL fixtures for the devserver tests (until ``supa_realtime.testing`` provides them)."""

from supa_realtime.testing.postgres import postgres_dsn, postgres_server  # noqa: F401
