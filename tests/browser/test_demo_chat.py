"""The demo in headless Chromium: the chat room and the live table, served by daphne.

The demo runs with its own settings (``demo_project.settings``) and the session's Redis. The
chat test uses a fresh SQLite file; users join through the guest form, so each browser
context is one signed-in user whose websocket is authenticated by its session. The live-table
test runs the demo's whole pipeline as ``./dev demo`` does: a real PostgreSQL, the local
Realtime server reading its WAL, the worker and daphne, each a process of its own.
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

import jwt
import pytest
import pytest_asyncio
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from psycopg.conninfo import conninfo_to_dict

from supa_realtime.testing import free_port
from supa_realtime.testing.browser import ARTIFACTS_DIR, screenshot
from supa_realtime.testing.postgres import postgres_dsn, postgres_server
from supa_realtime.testing.redis import redis_server
from tests.browser.browser_support import PageFactory

__all__ = ["postgres_dsn", "postgres_server", "redis_server"]

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
WAIT_MS = 8000
MEMBERS = ".realtime-presence li"
APP = "demo_project.asgi:application"
ADMIN_PASSWORD = "demo-test-password"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )  # fmt: skip


def demo_env(redis_url: str, directory: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="demo_project.settings",
        SUPA_REALTIME_DEMO_DIR=str(directory),
        REDIS_URL=redis_url,
        SUPABASE_URL="http://127.0.0.1:9",
        SUPABASE_KEY="tests-only-placeholder-key",
        DJANGO_DEBUG="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


async def manage(env: dict[str, str], *args: str) -> None:
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=120,
    )


class Processes:
    """Processes of one test, started in order and stopped in reverse order."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.running: list[subprocess.Popen[bytes]] = []

    async def start(self, name: str, command: list[str], env: dict[str, str], port: int) -> None:
        log_path = self.directory / f"{name}.log"
        process = await asyncio.to_thread(_spawn, command, env, log_path)
        self.running.append(process)
        deadline = time.monotonic() + START_TIMEOUT
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log_path.read_text()[-3000:]}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        for process in reversed(self.running):
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 10)


async def wait_for_line(process: subprocess.Popen[bytes], log_path: Path, text: str) -> None:
    """Until ``text`` is in the process's log (deadline ``START_TIMEOUT``)."""
    deadline = time.monotonic() + START_TIMEOUT
    while text not in (log := await asyncio.to_thread(log_path.read_text, errors="replace")):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} in time:\n{log[-3000:]}")
        await asyncio.sleep(0.05)


def daphne(port: int) -> list[str]:
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), APP]


@pytest_asyncio.fixture(loop_scope="session")
async def demo_site(redis_server: str, tmp_path: Path) -> AsyncIterator[str]:
    """The demo on daphne (a subprocess) with a migrated SQLite database; its base URL."""
    env = demo_env(redis_server, tmp_path)
    await manage(env, "migrate", "--noinput", "-v", "0")
    processes = Processes(tmp_path)
    port = free_port()
    try:
        await processes.start("daphne", daphne(port), env, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        await processes.stop()


def database_url(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    return f"postgres://{params['user']}@{params['host']}:{params['port']}/{params['dbname']}"


@pytest_asyncio.fixture(loop_scope="session")
async def demo_pipeline(redis_server: str, postgres_dsn: str, tmp_path: Path) -> AsyncIterator[str]:
    """The demo as ``./dev demo`` runs it, on a fresh PostgreSQL database; its base URL."""
    secret = "tests-only-jwt-secret-" + "x" * 32
    now = int(time.time())
    key = jwt.encode(
        {"role": "service_role", "iat": now, "exp": now + 3600}, secret, algorithm="HS256"
    )
    realtime_port, web_port = free_port(), free_port()
    env = demo_env(
        redis_server,
        tmp_path,
        DATABASE_URL=database_url(postgres_dsn),
        SUPABASE_URL=f"http://127.0.0.1:{realtime_port}",
        SUPABASE_KEY=key,
        SUPABASE_JWT_SECRET=secret,
    )
    await manage(env, "migrate", "--noinput", "-v", "0")
    await manage({**env, "DEMO_ADMIN_PASSWORD": ADMIN_PASSWORD}, "demo_superuser", "-v", "0")
    processes = Processes(tmp_path)
    manage_py = [sys.executable, "manage.py"]
    try:
        await processes.start(
            "realtime_devserver",
            [*manage_py, "realtime_devserver", "--host", "127.0.0.1", "--port", str(realtime_port)],
            env,
            realtime_port,
        )
        worker = await asyncio.to_thread(
            _spawn, [*manage_py, "realtime_worker"], env, tmp_path / "worker.log"
        )
        processes.running.append(worker)
        await wait_for_line(worker, tmp_path / "worker.log", "relaying realtime:todos")
        await processes.start("daphne", daphne(web_port), env, web_port)
        yield f"http://127.0.0.1:{web_port}"
    finally:
        await processes.stop()


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


async def test_a_row_saved_in_the_admin_appears_in_the_live_table(
    demo_pipeline: str, new_page: PageFactory
) -> None:
    live = await new_page(f"{demo_pipeline}/live/")
    await until(live, "document.getElementById('status').classList.contains('open')")

    admin = await new_page(f"{demo_pipeline}/admin/live/todo/add/")
    await admin.fill("#id_username", "admin")
    await admin.fill("#id_password", ADMIN_PASSWORD)
    async with admin.expect_navigation(timeout=WAIT_MS):
        await admin.click("input[type=submit]")
    await admin.fill("#id_title", "saved in the <admin>")
    async with admin.expect_navigation(timeout=WAIT_MS):
        await admin.click("input[name=_save]")

    await until(
        live,
        "[...document.querySelectorAll('#todos tbody tr')]"
        ".some(r => r.innerText.includes('saved in the <admin>'))",
    )
    await screenshot(live, "live-demo")
