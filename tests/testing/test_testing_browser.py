"""StaticServer: the loopback file server of the browser tests."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from supa_realtime.testing.browser import STATIC_ROOT, StaticServer


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_serves_mounted_directories_and_nothing_outside(tmp_path: Path) -> None:
    public = tmp_path / "public"
    public.mkdir()
    (public / "page.html").write_text("<p>hi</p>")
    (tmp_path / "secret.txt").write_text("secret")
    with StaticServer({"/pages/": public, "/static/": STATIC_ROOT}) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert fetch(f"{server.url}/pages/page.html") == (200, b"<p>hi</p>")
        status, body = fetch(f"{server.url}/static/supa_realtime/supa-realtime.js")
        assert status == 200
        assert b"class RealtimeClient" in body
        assert fetch(f"{server.url}/pages/../secret.txt")[0] == 404
        assert fetch(f"{server.url}/pages/%2e%2e/secret.txt")[0] == 404
        assert fetch(f"{server.url}/elsewhere/page.html")[0] == 404


def test_the_client_is_under_the_package_static_root() -> None:
    assert (STATIC_ROOT / "supa_realtime" / "supa-realtime.js").is_file()
