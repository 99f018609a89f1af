"""Pytest fixtures that drive a real headless Chromium through Playwright.

One Chromium runs per test session; every test gets fresh browser contexts (separate
cookies and storage: one context is one user). Playwright's bundled browsers are not used:
the system Chromium (``/usr/bin/chromium`` by default, or ``$SUPA_REALTIME_CHROMIUM``) is
launched, so ``playwright install`` is never needed.

Fixtures (async, on the session event loop — mark tests
``@pytest.mark.asyncio(loop_scope="session")``):

``browser``
    The session's :class:`playwright.async_api.Browser`.
``new_page``
    ``page = await new_page(url)`` opens ``url`` in a new context; every context is closed
    after the test, and when the test failed each open page is saved as a screenshot under
    ``test-artifacts/``.
``realtime_server``
    A :class:`~supa_realtime.devserver.DevServer` started on the session loop (the one in
    :mod:`supa_realtime.testing.devserver` runs on the test's own loop, which the browser
    tests do not use).

Helpers:

:class:`StaticServer`
    A loopback HTTP server in a thread that serves directories under URL prefixes.
:func:`screenshot`
    Save a page as ``test-artifacts/<name>.png``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from ..devserver import DevServer

__all__ = [
    "ARTIFACTS_DIR",
    "CHROMIUM_ARGS",
    "STATIC_ROOT",
    "StaticServer",
    "browser",
    "new_page",
    "pytest_runtest_makereport",
    "realtime_server",
    "screenshot",
]

logger = logging.getLogger(__name__)

CHROMIUM = os.environ.get("SUPA_REALTIME_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ARTIFACTS_DIR = Path(os.environ.get("SUPA_REALTIME_ARTIFACTS", "test-artifacts"))
STATIC_ROOT = Path(__file__).resolve().parent.parent / "static"
"""The package's static files: ``/static/supa_realtime/supa-realtime.js`` is in there."""

PageFactory = Callable[[str], Awaitable[Page]]


# -- static files -------------------------------------------------------------------------


class _Handler(SimpleHTTPRequestHandler):
    mounts: Mapping[str, Path] = {}

    def translate_path(self, path: str) -> str:
        route = unquote(urlsplit(path).path)
        for prefix, root in self.mounts.items():
            if route.startswith(prefix):
                target = (root / route[len(prefix) :]).resolve()
                if target.is_relative_to(root.resolve()):
                    return str(target)
        return ""  # nothing to open: 404

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("static: " + format, *args)


class StaticServer:
    """Serve directories on 127.0.0.1 from a daemon thread.

    Args:
        mounts: URL prefix (``"/static/"``) → directory.
    """

    def __init__(self, mounts: Mapping[str, Path]) -> None:
        handler = type("MountedHandler", (_Handler,), {"mounts": dict(mounts)})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="static-server", daemon=True
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> StaticServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> StaticServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- screenshots --------------------------------------------------------------------------


async def screenshot(page: Page, name: str) -> Path:
    """Save ``page`` as ``test-artifacts/<name>.png`` and return the path."""
    await asyncio.to_thread(ARTIFACTS_DIR.mkdir, parents=True, exist_ok=True)
    path = ARTIFACTS_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether the test body failed, for the screenshots of ``new_page``."""
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


# -- fixtures -----------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """The session's headless Chromium."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once per session)
        pytest.skip(f"no Chromium at {CHROMIUM} (set SUPA_REALTIME_CHROMIUM)")
    async with async_playwright() as playwright:
        # A Playwright launch always runs on a fresh temporary profile directory.
        instance = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
        )
        logger.info("Chromium %s started", instance.version)
        try:
            yield instance
        finally:
            await instance.close()


@pytest_asyncio.fixture(loop_scope="session")
async def new_page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[PageFactory]:
    """``await new_page(url)``: a page in a context of its own (one context = one user)."""
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    async def open_page(url: str) -> Page:
        context = await browser.new_context(viewport={"width": 900, "height": 640})
        contexts.append(context)
        page = await context.new_page()
        page.on("console", functools.partial(_console, len(pages)))
        page.on("pageerror", functools.partial(_page_error, len(pages)))
        pages.append(page)
        await page.goto(url)
        return page

    try:
        yield open_page
    finally:
        if request.node.stash.get(_FAILED, False):
            for number, page in enumerate(pages):
                if not page.is_closed():
                    path = await screenshot(page, f"{request.node.name}-failed-page{number}")
                    logger.warning("screenshot of a failed test: %s", path)
        for context in contexts:
            await context.close()


def _console(number: int, message: Any) -> None:
    logger.debug("page%d console.%s: %s", number, message.type, message.text[:500])


def _page_error(number: int, error: Any) -> None:
    logger.error("page%d error: %s", number, error)


@pytest_asyncio.fixture(loop_scope="session")
async def realtime_server() -> AsyncIterator[DevServer]:
    """A local Realtime server on the session loop; stopped after the test."""
    server = DevServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
