"""Admin of the demo table: each save or delete here reaches the live page through the WAL."""

from __future__ import annotations

from django.contrib import admin

from .models import Todo


@admin.register(Todo)
class TodoAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["id", "title", "done", "created_at"]
    list_editable = ["done"]
    search_fields = ["title"]
