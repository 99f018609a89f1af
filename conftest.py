"""Pytest configuration of the project: the fixtures users get from supa_realtime.testing."""

pytest_plugins = ["supa_realtime.testing"]
