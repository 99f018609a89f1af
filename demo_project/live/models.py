"""The demo's table: its changes reach the page from PostgreSQL's WAL, whoever makes them."""

from __future__ import annotations

from django.db import models

TABLE = "todos"
"""The table's name; the publication the local Realtime server reads holds it."""

PUBLICATION = "supabase_realtime"
"""The publication, named like Supabase's."""


class Todo(models.Model):
    title = models.CharField(max_length=200)
    done = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = TABLE
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title
