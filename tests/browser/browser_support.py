"""Helpers of the browser tests: the chat test page and waits with deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from supa_realtime.devserver import DevServer
from supa_realtime.phoenix import constants as c
from supa_realtime.testing.browser import StaticServer

PageFactory = Callable[[str], Awaitable[Page]]
WAIT_MS = 8000
TOPIC = "room:lobby"
FULL_TOPIC = "realtime:" + TOPIC


async def open_chat(new_page: PageFactory, pages_server: StaticServer) -> Page:
    return await new_page(f"{pages_server.url}/pages/chat.html")


async def start(page: Page, server: DevServer, name: str, **options: Any) -> Any:
    """``harness.start``: connect, join ``TOPIC`` and track ``{name}`` unless told not to."""
    opts = {
        "url": server.ws_url,
        "apikey": server.anon_key,
        "vsn": c.VSN_2,
        "topic": TOPIC,
        "name": name,
        "presenceKey": name,
        **options,
    }
    return await js(page, "opts => harness.start(opts)", opts)


async def js(page: Page, expression: str, arg: Any = None) -> Any:
    """``page.evaluate`` with a deadline (the expression may return a promise)."""
    async with asyncio.timeout(WAIT_MS / 1000):
        return await page.evaluate(expression, arg)


async def until(page: Page, expression: str, arg: Any = None) -> Any:
    """Wait (with a deadline) until ``expression`` is truthy in the page; return its value."""
    try:
        handle = await page.wait_for_function(expression, arg=arg, timeout=WAIT_MS)
    except PlaywrightTimeoutError:
        state = await page.evaluate(
            "({statuses: harness.statuses, logs: harness.logs.slice(-30),"
            " stats: harness.client && harness.client.stats})"
        )
        raise AssertionError(f"still false after {WAIT_MS} ms: {expression}\n{state}") from None
    return await handle.json_value()


async def presence_names(page: Page) -> list[str]:
    names: list[str] = await page.locator("#presence li").all_inner_texts()
    return names


def messages(page: Page) -> Awaitable[list[str]]:
    return page.locator("#messages li").all_inner_texts()
