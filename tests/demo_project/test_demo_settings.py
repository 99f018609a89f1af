"""The demo's settings agree with its app and survive idle websockets."""

from __future__ import annotations

import importlib

from channels_redis.core import RedisChannelLayer

from demo_project import settings as demo_settings

# The migration that puts the table in the publication (its module name starts with a digit).
publication_migration = importlib.import_module("demo_project.live.migrations.0002_publication")


def test_layer_reads_longer_than_a_blocking_receive() -> None:
    # Otherwise redis-py's default read timeout ends an idle consumer's receive with an error.
    (host,) = demo_settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    assert host["socket_timeout"] > RedisChannelLayer.brpop_timeout


def test_devserver_reads_the_publication_that_holds_the_table() -> None:
    assert (
        demo_settings.SUPA_REALTIME["DEVSERVER"]["PUBLICATION"] == publication_migration.PUBLICATION
    )
    bindings = [
        binding
        for subscription in demo_settings.SUPA_REALTIME["SUBSCRIPTIONS"]
        for binding in subscription.get("postgres_changes", [])
    ]
    assert {"event": "*", "schema": "public", "table": publication_migration.TABLE} in bindings
