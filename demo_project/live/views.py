"""The live page: a table of ``todos`` kept current from PostgreSQL's WAL, and a log of events.

The model is looked up through the app registry, so importing this module (the demo's URLconf
does) works in projects that do not install the app.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import messages
from django.db import models
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from supa_realtime.conf import settings as realtime_settings
from supa_realtime.exceptions import RealtimeError

MAX_ROWS = 200
BROADCAST_EVENT = "message"
TITLE_MAX_LENGTH = 200


APP_LABEL: str = "live"
MODEL_NAME: str = "Todo"


def _todos() -> type[models.Model]:
    return apps.get_model(APP_LABEL, MODEL_NAME)


def row(todo: Any) -> dict[str, Any]:
    """A row as the page's script shows it (the same fields a WAL record carries)."""
    return {
        "id": todo.id,
        "title": todo.title,
        "done": todo.done,
        "created_at": todo.created_at.isoformat(),
    }


def _broadcast_topic() -> str | None:
    for subscription in realtime_settings.SUBSCRIPTIONS:
        if subscription.wants_broadcast(BROADCAST_EVENT):
            return subscription.topic
    return None


@require_GET
def live(request: HttpRequest) -> HttpResponse:
    """The page: server-rendered rows, then live updates over ``/ws/live/``."""
    model = _todos()
    todos = list(model._default_manager.order_by("-id")[:MAX_ROWS])
    todos.reverse()
    subscriptions = [
        {
            "topic": s.full_topic,
            "broadcast": s.broadcast == "*" or bool(s.broadcast),
            "presence": s.presence,
            "tables": [f"{b.schema}.{b.table or '*'}" for b in s.postgres_changes],
        }
        for s in realtime_settings.SUBSCRIPTIONS
    ]
    config = {
        "socket_path": "/ws/live/",
        "rows_url": "/live/rows/",
        "schema": "public",
        "table": model._meta.db_table,
        "max_rows": MAX_ROWS,
    }
    return render(
        request,
        "demo/live.html",
        {
            "todos": todos,
            "table": model._meta.db_table,
            "subscriptions": subscriptions,
            "broadcast_topic": _broadcast_topic(),
            "live_config": config,
        },
    )


@require_GET
def rows(request: HttpRequest) -> JsonResponse:
    """The newest rows, oldest first; the page refetches them after a gap."""
    todos = list(_todos()._default_manager.order_by("-id")[:MAX_ROWS])
    todos.reverse()
    return JsonResponse({"rows": [row(t) for t in todos]})


@require_POST
def add_todo(request: HttpRequest) -> HttpResponse:
    """Insert a row with the ORM; the page learns about it from the WAL like any other write."""
    title = request.POST.get("title", "").strip()
    if not title or len(title) > TITLE_MAX_LENGTH:
        messages.error(request, f"A title is 1 to {TITLE_MAX_LENGTH} characters.")
    else:
        _todos()._default_manager.create(title=title)
    return redirect("live")


@require_POST
def send_broadcast(request: HttpRequest) -> HttpResponse:
    """Broadcast a message on the demo topic through supa_realtime's outbox and the worker."""
    from supa_realtime.broadcast import broadcast

    topic = _broadcast_topic()
    text = request.POST.get("text", "").strip()
    if topic is None:
        messages.error(request, "No subscription relays broadcasts.")
    elif not text:
        messages.error(request, "Type a message to broadcast.")
    else:
        try:
            broadcast(topic, BROADCAST_EVENT, {"text": text})
        except RealtimeError as exc:
            messages.error(request, f"The broadcast was not sent: {exc}")
    return redirect("live")
