"""Put the table in the ``supabase_realtime`` publication (PostgreSQL only), as Supabase's
dashboard does under *Database → Replication*; the local Realtime server reads that publication.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

PUBLICATION = "supabase_realtime"
TABLE = "todos"


def add_to_publication(apps: Any, schema_editor: Any) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", [PUBLICATION])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE PUBLICATION "{PUBLICATION}"')
        cursor.execute(
            "SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND schemaname = "
            "current_schema() AND tablename = %s",
            [PUBLICATION, TABLE],
        )
        if cursor.fetchone() is None:
            cursor.execute(f'ALTER PUBLICATION "{PUBLICATION}" ADD TABLE "{TABLE}"')


def remove_from_publication(apps: Any, schema_editor: Any) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND schemaname = "
            "current_schema() AND tablename = %s",
            [PUBLICATION, TABLE],
        )
        if cursor.fetchone() is not None:
            cursor.execute(f'ALTER PUBLICATION "{PUBLICATION}" DROP TABLE "{TABLE}"')


class Migration(migrations.Migration):
    dependencies = [("live", "0001_initial")]

    operations = [migrations.RunPython(add_to_publication, remove_from_publication)]
