"""supa-realtime.js in headless Chromium against the Django gateway (daphne processes).

The gateway's own test fixtures start the servers (``tests/gateway/conftest.py``); visitors
are anonymous, and the test settings let anyone join, broadcast and track on ``room:*``.
"""

from __future__ import annotations

import pytest

from supa_realtime.phoenix import constants as c
from supa_realtime.testing.browser import StaticServer
from supa_realtime.testing.redis import channel_layer_config, redis_server
from tests.browser.browser_support import (
    TOPIC,
    PageFactory,
    js,
    messages,
    open_chat,
    presence_names,
    until,
)
from tests.gateway.conftest import gateway_db, gateway_factory, gateway_settings, layer_prefix
from tests.gateway.gateway_support import GatewayFactory

__all__ = [
    "channel_layer_config",
    "gateway_db",
    "gateway_factory",
    "gateway_settings",
    "layer_prefix",
    "redis_server",
]

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.parametrize("vsn", [c.VSN_2, c.VSN_1])
async def test_two_visitors_chat_and_see_each_other_through_the_gateway(
    vsn: str, gateway_factory: GatewayFactory, new_page: PageFactory, pages_server: StaticServer
) -> None:
    server = await gateway_factory()
    alice = await open_chat(new_page, pages_server)
    bob = await open_chat(new_page, pages_server)
    for page, name in ((alice, "alice"), (bob, "bob")):
        options = {"url": server.url, "vsn": vsn, "topic": TOPIC, "name": name}
        assert (
            await js(page, "opts => harness.start({...opts, presenceKey: opts.name})", options)
            == "ok"
        )

    for page in (alice, bob):
        await until(page, "document.querySelectorAll('#presence li').length === 2")
        assert await presence_names(page) == ["alice", "bob"]

    await alice.fill("#message", "hello bob")
    await alice.click("#send")
    await alice.fill("#message", "still there?")
    await alice.click("#send")
    await until(bob, "document.querySelectorAll('#messages li').length === 2")
    assert await messages(bob) == ["alicehello bob", "alicestill there?"]
    assert await messages(alice) == []

    if vsn == c.VSN_2:
        await js(
            bob,
            """() => harness.channel.send({type: 'broadcast', event: 'bin',
                 payload: new Uint8Array([1, 2, 3])})""",
        )
        event = await until(alice, "harness.events.find(e => e.event === 'bin')")
        assert event["payload"] == {"bytes": [1, 2, 3]}

    await alice.context.close()
    await until(bob, "document.querySelectorAll('#presence li').length === 1")
    assert await presence_names(bob) == ["bob"]
    assert await js(bob, "harness.statuses") == ["SUBSCRIBED"]
