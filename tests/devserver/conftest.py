"""Fixtures of the local Realtime server tests."""

from supa_realtime.testing.devserver import realtime_server, realtime_server_factory

__all__ = ["realtime_server", "realtime_server_factory"]
