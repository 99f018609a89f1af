"""The demo's pages, rendered through Django's test client."""

from __future__ import annotations

from typing import Any

from django.test import Client


def test_index_lists_topics_and_groups(client: Client, settings: Any) -> None:
    settings.SUPA_REALTIME = {
        "URL": "http://127.0.0.1:4000",
        "KEY": "tests-only-placeholder-key",
        "SUBSCRIPTIONS": [{"topic": "room:1", "presence": True}],
    }
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<code>http://127.0.0.1:4000</code>" in html
    assert (
        "<tr><td><code>realtime:room:1</code></td><td><code>realtime.room.3A1</code></td>"
        "<td>yes</td></tr>"
    ) in html
    assert "tests-only-placeholder-key" not in html


def test_index_without_subscriptions(client: Client, settings: Any) -> None:
    settings.SUPA_REALTIME = {"URL": "http://127.0.0.1:4000", "KEY": "k"}
    response = client.get("/")
    assert "No subscriptions configured." in response.content.decode()
