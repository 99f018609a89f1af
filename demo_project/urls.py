"""URLs of the demo."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from demo_project import views
from demo_project.live import views as live_views

urlpatterns = [
    path("", views.index, name="index"),
    path("live/", live_views.live, name="live"),
    path("live/rows/", live_views.rows, name="live-rows"),
    path("live/todos/", live_views.add_todo, name="live-add-todo"),
    path("live/broadcast/", live_views.send_broadcast, name="live-broadcast"),
    path("chat/", include("demo_project.chat.urls")),
    path("admin/", admin.site.urls),
]
