"""URLs of the demo chat room (included under ``chat/``)."""

from __future__ import annotations

from django.urls import path

from demo_project.chat import views

urlpatterns = [
    path("", views.room, name="chat"),
    path("join/", views.join, name="chat-join"),
]
