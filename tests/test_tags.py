"""The template tags render real templates to exact HTML; presence comes from a real Redis."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
import redis.asyncio
from django.contrib.auth.models import AnonymousUser, User
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory

from supa_realtime.gateway.tokens import TokenClaims, verify_token
from supa_realtime.presence import PresenceStore
from supa_realtime.tags import events_attrs, parse_grants, presence_html
from supa_realtime.testing import free_port

TOKEN = re.compile(r'"token": "([^"]+)"')


def render(source: str, **context: Any) -> str:
    return Template("{% load supa_realtime %}" + source).render(Context(context))


def split_token(html: str) -> tuple[str, TokenClaims]:
    match = TOKEN.search(html)
    assert match is not None, html
    claims = verify_token(match.group(1))
    assert isinstance(claims, TokenClaims)
    return html.replace(match.group(1), "TOKEN"), claims


def test_client_tag_renders_config_scripts_and_a_token_for_the_user() -> None:
    request = RequestFactory().get("/")
    request.user = User(pk=42, username="alice")
    html = render(
        '{% realtime_client "chat:*=join broadcast presence" "orders=join" ttl=60 %}',
        request=request,
    )
    html, claims = split_token(html)
    assert html == (
        '<script id="supa-realtime-config" type="application/json">'
        '{"endpoint": "", "token": "TOKEN", "vsn": "2.0.0"}</script>\n'
        '<script src="/static/supa_realtime/supa-realtime.js"></script>\n'
        '<script src="/static/supa_realtime/supa-realtime-tags.js"></script>'
    )
    assert claims.role == "authenticated"
    assert claims.sub == "42"
    assert dict(claims.topics) == {
        "chat:*": frozenset({"join", "broadcast", "presence"}),
        "orders": frozenset({"join"}),
    }
    assert claims.grants("chat:lobby", "broadcast")
    assert not claims.grants("orders", "broadcast")


def test_client_tag_takes_the_request_nonce_and_never_shows_the_server_key(
    settings: Any,
) -> None:
    settings.SUPA_REALTIME = {"KEY": "server-secret-key-xyz"}
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    request.csp_nonce = 'n"<1>'  # type: ignore[attr-defined]
    html, claims = split_token(
        render('{% realtime_client endpoint="ws://127.0.0.1:1/rt" vsn="1.0.0" %}', request=request)
    )
    assert html == (
        '<script id="supa-realtime-config" type="application/json">'
        '{"endpoint": "ws://127.0.0.1:1/rt", "token": "TOKEN", "vsn": "1.0.0"}</script>\n'
        '<script src="/static/supa_realtime/supa-realtime.js" nonce="n&quot;&lt;1&gt;"></script>\n'
        '<script src="/static/supa_realtime/supa-realtime-tags.js" nonce="n&quot;&lt;1&gt;">'
        "</script>"
    )
    assert claims.role == "anon"
    assert claims.sub is None
    assert not claims.topics
    assert "server-secret-key-xyz" not in html


def test_client_tag_nonce_argument_wins_over_the_request() -> None:
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    request.csp_nonce = "from-request"  # type: ignore[attr-defined]
    html, _ = split_token(render('{% realtime_client nonce="abc" %}', request=request))
    assert html.count('nonce="abc"') == 2
    assert "from-request" not in html


def test_a_grant_without_actions_is_an_error() -> None:
    with pytest.raises(ValueError, match="pattern=action"):
        parse_grants(["chat:*"])
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    with pytest.raises(ValueError, match="pattern=action"):
        render('{% realtime_client "chat:*=" %}', request=request)


def test_events_tag_renders_attributes() -> None:
    assert render('<div {% realtime_events "orders" "INSERT  UPDATE" %}></div>') == (
        '<div data-realtime-events="orders" data-realtime-names="INSERT UPDATE"></div>'
    )
    assert render(
        '<div {% realtime_events topic table="public.orders" %}></div>', topic="o<x>"
    ) == (
        '<div data-realtime-events="o&lt;x&gt;" data-realtime-names="*"'
        ' data-realtime-table="public.orders"></div>'
    )
    assert events_attrs("t", "") == 'data-realtime-events="t" data-realtime-names="*"'


def test_events_tag_needs_a_topic() -> None:
    with pytest.raises(TemplateSyntaxError):
        render("{% realtime_events %}")


def test_presence_html_escapes_hostile_metas() -> None:
    state = {
        "<b>mallory</b>": {
            "metas": [
                {"phx_ref": "r1", "name": "old"},
                {
                    "phx_ref": "r2",
                    "name": '<script>alert("x")</script>',
                    "typing": True,
                    "note": '" onmouseover="alert(1)',
                    'bad" onclick="x': "dropped",
                    "nested": {"no": "objects"},
                },
            ]
        },
        "alice": {"metas": [{"phx_ref": "r3", "typing": False, "age": 7}]},
    }
    assert presence_html("room:<lobby>", state, key='al"ice') == (
        '<ul class="realtime-presence" data-realtime-presence="room:&lt;lobby&gt;"'
        ' data-realtime-key="al&quot;ice">'
        '<li class="realtime-presence-member" data-key="&lt;b&gt;mallory&lt;/b&gt;"'
        ' data-count="2" data-meta-name="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"'
        ' data-meta-note="&quot; onmouseover=&quot;alert(1)" data-meta-typing="true">'
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</li>"
        '<li class="realtime-presence-member" data-key="alice" data-count="1"'
        ' data-meta-age="7" data-meta-typing="false">alice</li>'
        "</ul>"
    )


def test_presence_tag_renders_the_state_in_redis(redis_server: str, settings: Any) -> None:
    prefix = f"tags-{uuid.uuid4().hex[:10]}"
    settings.SUPA_REALTIME = {"REDIS_URL": redis_server, "REDIS_PREFIX": prefix}

    async def track() -> None:
        client = redis.asyncio.Redis.from_url(redis_server)
        try:
            store = PresenceStore(client, None, prefix=prefix)
            await store.track(
                "realtime:room:lobby",
                "mallory",
                store.entry_id("c1", 1),
                {"name": "<img src=x onerror=alert(1)>", "typing": True},
            )
            await store.track("realtime:room:lobby", "bob", store.entry_id("c2", 1), {})
            await store.track("realtime:room:other", "carol", store.entry_id("c3", 1), {})
        finally:
            await client.aclose()

    asyncio.run(track())
    html = render('{% realtime_presence "room:lobby" key=me %}', me="bob")
    assert html == (
        '<ul class="realtime-presence" data-realtime-presence="room:lobby"'
        ' data-realtime-key="bob">'
        '<li class="realtime-presence-member" data-key="bob" data-count="1">bob</li>'
        '<li class="realtime-presence-member" data-key="mallory" data-count="1"'
        ' data-meta-name="&lt;img src=x onerror=alert(1)&gt;" data-meta-typing="true">'
        "&lt;img src=x onerror=alert(1)&gt;</li>"
        "</ul>"
    )
    assert render('{% realtime_presence "room:empty" %}') == (
        '<ul class="realtime-presence" data-realtime-presence="room:empty"></ul>'
    )


def test_presence_tag_renders_an_empty_list_when_redis_is_down(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SUPA_REALTIME = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    assert render('{% realtime_presence "room:lobby" %}') == (
        '<ul class="realtime-presence" data-realtime-presence="room:lobby"></ul>'
    )
    assert "presence of 'room:lobby' not rendered, Redis unavailable" in caplog.text
