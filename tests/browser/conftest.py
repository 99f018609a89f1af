"""Fixtures of the browser tests: Chromium, pages and a server for the test pages."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from supa_realtime.testing.browser import (
    STATIC_ROOT,
    StaticServer,
    browser,
    new_page,
    pytest_runtest_makereport,
    realtime_server,
)

__all__ = ["browser", "new_page", "pages_server", "pytest_runtest_makereport", "realtime_server"]

PAGES = Path(__file__).resolve().parent / "pages"


@pytest.fixture(scope="session")
def pages_server() -> Iterator[StaticServer]:
    """The package's static files under ``/static/`` and the test pages under ``/pages/``."""
    with StaticServer({"/static/": STATIC_ROOT, "/pages/": PAGES}) as server:
        yield server
