"""Routes of the gateway: the default path and other prefixes."""

from __future__ import annotations

import pytest

from supa_realtime.gateway.routing import realtime_urlpatterns, websocket_urlpatterns


@pytest.mark.parametrize(
    ("prefix", "path", "matches"),
    [
        (None, "realtime/v1/websocket", True),
        (None, "realtime/v1/websocket/", True),
        (None, "socket/websocket", False),
        ("/socket/", "socket/websocket", True),
        ("", "websocket", True),
        ("rt", "realtime/v1/websocket", False),
    ],
)
def test_paths(prefix: str | None, path: str, matches: bool) -> None:
    patterns = websocket_urlpatterns if prefix is None else realtime_urlpatterns(prefix)
    assert (patterns[0].pattern.match(path) is not None) is matches
