"""Pages of the demo."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from supa_realtime.conf import settings as realtime_settings
from supa_realtime.groups import group_for


def index(request: HttpRequest) -> HttpResponse:
    """The demo's home page: what it is connected to and which topics it relays."""
    subscriptions = [
        {"topic": s.full_topic, "group": group_for(s.topic), "presence": s.presence}
        for s in realtime_settings.SUBSCRIPTIONS
    ]
    return render(
        request,
        "demo/index.html",
        {"realtime_url": realtime_settings.URL, "subscriptions": subscriptions},
    )
