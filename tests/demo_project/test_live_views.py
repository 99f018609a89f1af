"""The live page, its rows endpoint and its form, with the live app installed for the test."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from demo_project.live.consumers import LiveConsumer


@pytest.fixture
def todo_model(transactional_db: None, settings: Any) -> Iterator[Any]:
    """The demo's ``Todo`` model with its table, in the test database."""
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "demo_project.live"]
    settings.SUPA_REALTIME = {
        "URL": "http://127.0.0.1:4000",
        "KEY": "tests-only-placeholder-key",
        "SUBSCRIPTIONS": [
            {"topic": "demo", "presence": True},
            {"topic": "todos", "broadcast": [], "postgres_changes": [{"table": "todos"}]},
        ],
    }
    app_label: str = "live"
    model = apps.get_model(app_label, "Todo")
    with connection.schema_editor() as editor:
        editor.create_model(model)
    try:
        yield model
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(model)


def test_rows_are_rendered_escaped(client: Client, todo_model: Any) -> None:
    todo_model.objects.create(title="<script>alert(1)</script>")
    todo_model.objects.create(title="second", done=True)
    response = client.get("/live/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    rows = re.findall(r'<tr data-id="(\d+)"><td>\d+</td><td>([^<]*)</td>', html)
    assert [title for _, title in rows] == ["&lt;script&gt;alert(1)&lt;/script&gt;", "second"]
    config = re.search(r'<script id="live-config" type="application/json">(.*?)</script>', html)
    assert config
    assert json.loads(config.group(1)) == {
        "socket_path": "/ws/live/",
        "rows_url": "/live/rows/",
        "schema": "public",
        "table": "todos",
        "max_rows": 200,
    }
    assert "<code>realtime:todos</code> (public.todos)" in html
    assert "tests-only-placeholder-key" not in html


def test_rows_endpoint(client: Client, todo_model: Any) -> None:
    todo = todo_model.objects.create(title="a")
    body = client.get("/live/rows/").json()
    assert body == {
        "rows": [
            {
                "id": todo.id,
                "title": "a",
                "done": False,
                "created_at": todo.created_at.isoformat(),
            }
        ]
    }


def test_add_todo(client: Client, todo_model: Any) -> None:
    response = client.post("/live/todos/", {"title": "  buy milk  "})
    assert response.status_code == 302
    assert list(todo_model.objects.values_list("title", flat=True)) == ["buy milk"]
    response = client.post("/live/todos/", {"title": "   "}, follow=True)
    assert "A title is 1 to 200 characters." in response.content.decode()
    assert todo_model.objects.count() == 1


def test_broadcast_needs_text(client: Client, todo_model: Any) -> None:
    response = client.post("/live/broadcast/", {"text": ""}, follow=True)
    assert "Type a message to broadcast." in response.content.decode()


def test_demo_superuser(todo_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.contrib.auth import get_user_model

    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)
    with pytest.raises(CommandError):
        call_command("demo_superuser")
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "first")
    call_command("demo_superuser")
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "second")
    call_command("demo_superuser")
    users = get_user_model().objects.all()
    assert [(u.username, u.is_superuser, u.is_staff) for u in users] == [("admin", True, True)]
    assert users[0].check_password("second")


async def test_binary_payloads_reach_the_browser_as_base64() -> None:
    text = await LiveConsumer.encode_json({"payload": b"\x00\xff", "n": 1})
    assert json.loads(text) == {"payload": {"base64": "AP8="}, "n": 1}
