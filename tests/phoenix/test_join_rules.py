"""Server-side join rules shared by the devserver and the gateway (phoenix/join.py)."""

from __future__ import annotations

from typing import Any

import pytest

from supa_realtime.phoenix.join import JoinConfig, parse_bindings, refreshed_token
from supa_realtime.phoenix.server_presence import diff_payload, tracked_meta


@pytest.mark.parametrize(
    ("payload", "current", "expected"),
    [
        ({"access_token": "new"}, "old", "new"),
        ({"access_token": "old"}, "old", None),
        ({"access_token": None}, "old", None),
        ({"access_token": "sb_publishable_x"}, "old", None),
        ({}, "old", None),
        ("not a dict", "old", None),
        ({"access_token": 5}, "old", 5),
    ],
)
def test_refreshed_token(payload: Any, current: str, expected: Any) -> None:
    assert refreshed_token(payload, current) == expected


def test_join_config_coercions() -> None:
    config = JoinConfig.parse(
        {
            "config": {
                "broadcast": {"ack": "TRUE", "self": 1},
                "presence": {"key": 42, "enabled": "false"},
                "postgres_changes": [None, {"schema": "public"}],
            },
            "access_token": "sb_secret_x",
        }
    )
    assert config.ack is True
    assert config.self_broadcast is False
    assert config.presence_key == "42"
    assert config.presence_enabled is False
    assert config.postgres_changes == ({"schema": "public"},)
    assert config.access_token is None


def test_parse_bindings_one_bad_binding_subscribes_to_none() -> None:
    good = {"event": "*", "schema": "public", "table": "todos"}
    bad = {"schema": "public", "table": "todos", "filter": "id=foo.1"}
    bindings, entries, error = parse_bindings([good, bad])
    assert bindings == []
    assert [e["table"] for e in entries] == ["todos", "todos"]
    assert error is not None
    assert error.startswith("Error parsing `filter` params")
    bindings, entries, error = parse_bindings([good])
    assert error is None
    assert entries == [{**good, "id": bindings[0].id}]


def test_tracked_meta_and_diff() -> None:
    first = tracked_meta({"a": 1}, None)
    second = tracked_meta({"a": 2}, first)
    assert second["phx_ref_prev"] == first["phx_ref"]
    assert "phx_ref_prev" not in first
    assert diff_payload({"k": [second]}, {}) == {"joins": {"k": {"metas": [second]}}, "leaves": {}}
