"""The demo chat room in headless Chromium: two users on the demo site served by daphne.

The demo runs with its own settings (``demo_project.settings``) on a fresh SQLite file and
the session's Redis; users join through the guest form, so each browser context is one
signed-in user whose websocket is authenticated by its session.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from supa_realtime.testing import free_port
from supa_realtime.testing.browser import ARTIFACTS_DIR, screenshot
from supa_realtime.testing.redis import redis_server
from tests.browser.browser_support import PageFactory

__all__ = ["redis_server"]

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
WAIT_MS = 8000
MEMBERS = ".realtime-presence li"
APP = "demo_project.asgi:application"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _spawn_daphne(port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), APP],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest_asyncio.fixture(loop_scope="session")
async def demo_site(redis_server: str, tmp_path: Path) -> AsyncIterator[str]:
    """The demo on daphne (a subprocess) with a migrated SQLite database; its base URL."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="demo_project.settings",
        SUPA_REALTIME_DEMO_DIR=str(tmp_path),
        REDIS_URL=redis_server,
        SUPABASE_URL="http://127.0.0.1:9",
        SUPABASE_KEY="tests-only-placeholder-key",
        DJANGO_DEBUG="1",
    )
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    port = free_port()
    log_path = tmp_path / "daphne.log"
    process = await asyncio.to_thread(_spawn_daphne, port, env, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not start:\n{log_path.read_text()[-3000:]}")
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 10)


async def until(page: Page, expression: str, arg: Any = None) -> Any:
    """Wait (with a deadline) until ``expression`` is truthy in the page; its value."""
    try:
        handle = await page.wait_for_function(expression, arg=arg, timeout=WAIT_MS)
    except PlaywrightTimeoutError:
        body = await page.inner_text("body")
        raise AssertionError(f"still false after {WAIT_MS} ms: {expression}\n{body}") from None
    return await handle.json_value()


async def join_as(new_page: PageFactory, site: str, name: str) -> Page:
    """Open /chat/ (redirected to the guest form), join as ``name``, wait until subscribed."""
    page = await new_page(f"{site}/chat/")
    assert "/chat/join/" in page.url
    await page.fill("#id_name", name)
    async with page.expect_navigation(timeout=WAIT_MS):
        await page.click("#join button")
    assert page.url == f"{site}/chat/"
    await until(page, "document.getElementById('status').textContent === 'subscribed'")
    return page


async def members(page: Page) -> list[str]:
    keys: list[str] = await page.eval_on_selector_all(MEMBERS, "els => els.map(e => e.dataset.key)")
    return keys


def messages(page: Page) -> Any:
    return page.locator("#messages li").all_inner_texts()


async def test_two_users_chat_see_each_other_and_who_is_typing(
    demo_site: str, new_page: PageFactory
) -> None:
    alice = await join_as(new_page, demo_site, "alice")
    await until(alice, f"document.querySelectorAll('{MEMBERS}').length === 1")

    # The list is rendered on the server: a fresh page load already shows alice.
    response = await alice.context.request.get(f"{demo_site}/chat/")
    assert 'data-key="alice"' in await response.text()

    bob = await join_as(new_page, demo_site, "bob")
    for page in (alice, bob):
        await until(page, f"document.querySelectorAll('{MEMBERS}').length === 2")
        assert await members(page) == ["alice", "bob"]

    await alice.fill("#message", "hello bob")
    await until(bob, "document.querySelector('li[data-key=alice]').dataset.metaTyping === 'true'")
    await alice.press("#message", "Enter")
    await alice.fill("#message", "<b>still</b> there?")
    await alice.press("#message", "Enter")
    await until(bob, "document.querySelectorAll('#messages li').length >= 2")
    assert await messages(bob) == ["alicehello bob", "alice<b>still</b> there?"]
    assert await messages(alice) == ["alicehello bob", "alice<b>still</b> there?"]
    await until(bob, "document.querySelector('li[data-key=alice]').dataset.metaTyping === 'false'")

    await bob.fill("#message", "hi alice")
    await bob.press("#message", "Enter")
    await until(alice, "document.querySelectorAll('#messages li').length === 3")
    # Bob's reply went out after alice's messages came in: a duplicate would be there by now.
    assert await messages(bob) == ["alicehello bob", "alice<b>still</b> there?", "bobhi alice"]

    path = await screenshot(bob, "chat-demo")
    assert path == ARTIFACTS_DIR / "chat-demo.png"
    assert path.stat().st_size > 0

    await alice.context.close()
    await until(bob, f"document.querySelectorAll('{MEMBERS}').length === 1")
    assert await members(bob) == ["bob"]
