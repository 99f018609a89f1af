"""The two README commands: the README shows exactly them, and ``./dev demo`` really runs."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import websockets.sync.client

ROOT = Path(__file__).resolve().parent.parent
DEMO_START_TIMEOUT = 90.0
DEMO_STOP_TIMEOUT = 60.0
BROWSER_TIMEOUT = 30.0
T = TypeVar("T")


def test_readme_opens_with_exactly_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_section = readme.split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", first_section, re.DOTALL)
    assert [b.strip() for b in blocks] == ["./dev demo", "./dev test"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert "set -euo pipefail" in lines
    assert lines[-1] == "./dev test"
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
    assert os.access(ROOT / "dev", os.X_OK)


def test_unknown_subcommand_prints_usage() -> None:
    result = subprocess.run(
        [str(ROOT / "dev"), "nonsense"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert "./dev demo" in result.stderr
    assert "./dev test" in result.stderr


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_until(path: Path, marker: str, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + DEMO_START_TIMEOUT
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace")
        if marker in text:
            return text
        if process.poll() is not None:
            pytest.fail(f"./dev demo exited with {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.1)
    pytest.fail(f"./dev demo printed no {marker!r} in time:\n{path.read_text()[-3000:]}")


class PageNotReady(Exception):
    """The page could not evaluate an expression yet (DevTools answered with an error)."""


class ChromiumPage:
    """A page in headless Chromium, read through the DevTools protocol."""

    def __init__(self, url: str, profile: Path) -> None:
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        self.process = subprocess.Popen(
            [
                chromium,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._ids = itertools.count(1)
        try:
            port = self._wait(lambda: self._devtools_port(profile), "Chromium's DevTools port")
            target = self._wait(lambda: self._page_target(port), "the page's DevTools target")
            self.ws = websockets.sync.client.connect(target, max_size=None)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _wait(probe: Callable[[], T | None], what: str) -> T:
        deadline = time.monotonic() + BROWSER_TIMEOUT
        while time.monotonic() < deadline:
            value = probe()
            if value is not None:
                return value
            time.sleep(0.05)
        pytest.fail(f"no {what} within {BROWSER_TIMEOUT} s")

    @staticmethod
    def _devtools_port(profile: Path) -> int | None:
        try:
            first = (profile / "DevToolsActivePort").read_text().split("\n", 1)[0]
        except OSError:
            return None
        return int(first) if first.isdigit() else None

    @staticmethod
    def _page_target(port: int) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                targets = json.loads(r.read())
        except OSError:
            return None
        pages = [t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"]
        return pages[0] if pages else None

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        number = next(self._ids)
        params = {"expression": expression, "returnByValue": True}
        self.ws.send(json.dumps({"id": number, "method": "Runtime.evaluate", "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=BROWSER_TIMEOUT))
            if reply.get("id") == number:
                if "error" in reply:
                    raise PageNotReady(reply["error"].get("message", str(reply["error"])))
                return reply["result"]["result"].get("value")

    def wait_for(self, expression: str) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + BROWSER_TIMEOUT
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except PageNotReady:  # e.g. no execution context while the page still loads
                value = None
            if value:
                return value
            time.sleep(0.05)
        pytest.fail(f"{expression!r} stayed falsy for {BROWSER_TIMEOUT} s")

    def close(self) -> None:
        if hasattr(self, "ws"):
            self.ws.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


ROWS = (
    "[...document.querySelectorAll('#todos tbody tr')]"
    ".map(r => [...r.cells].map(c => c.textContent))"
)


def check_live_page_in_chromium(url: str, database_url: str, tmp_path: Path) -> None:
    """The live page's script shows rows written with psql-like clients, escaped, as they
    commit, and logs each relayed change."""
    title = '<img src=x onerror="document.title=1">'
    page = ChromiumPage(url, tmp_path / "chromium")
    try:
        page.wait_for("document.getElementById('status').textContent === 'connected'")
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute(
                "INSERT INTO todos (title, done, created_at) VALUES (%s, false, now()) "
                "RETURNING id",
                (title,),
            ).fetchone()
            assert row is not None
            todo_id = str(row[0])
            rows = page.wait_for(f"(rows => rows.some(r => r[0] === '{todo_id}') && rows)({ROWS})")
            assert [todo_id, title, "no"] in [r[:3] for r in rows]
            assert page.evaluate("document.querySelector('#todos img')") is None
            conn.execute("UPDATE todos SET done = true WHERE id = %s", (row[0],))
            page.wait_for(f"{ROWS}.some(r => r[0] === '{todo_id}' && r[2] === 'yes')")
            conn.execute("DELETE FROM todos WHERE id = %s", (row[0],))
            page.wait_for(f"!{ROWS}.some(r => r[0] === '{todo_id}')")
        for kind in ("INSERT", "UPDATE", "DELETE"):
            page.wait_for(
                "document.getElementById('log').textContent"
                f".includes('realtime:todos {kind} public.todos')"
            )
    finally:
        page.close()


@pytest.fixture
def demo_dir() -> Iterator[Path]:
    """A folder for the demo's state that others may pass through, as a clone's ``.demo`` is:
    run as root, the demo's PostgreSQL runs as an unprivileged user that must reach it (pytest's
    own temporary folders are closed to other users)."""
    with tempfile.TemporaryDirectory(prefix="supa_realtime-dev-demo-") as folder:
        os.chmod(folder, 0o711)
        yield Path(folder)


def test_dev_demo_serves_the_site_and_stops_on_ctrl_c(demo_dir: Path) -> None:
    tmp_path = demo_dir
    web_port = _free_port()
    log = tmp_path / "demo.log"
    env = {
        **os.environ,
        "DEV_PYTHON": sys.executable,
        "DEV_DEMO_DIR": str(tmp_path / "demo"),
        "DEMO_PORT": str(web_port),
    }
    for name in (
        "SUPABASE_URL",
        "SUPABASE_KEY",
        "SUPABASE_JWT_SECRET",
        "REDIS_URL",
        "DATABASE_URL",
    ):
        env.pop(name, None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ROOT / "dev"), "demo"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        text = _read_until(log, "Ctrl-C stops everything.", process)
        urls = re.search(
            r"supa_realtime demo: http://127\.0\.0\.1:(\d+)/\n"
            r"\s+Realtime server:\s+http://127\.0\.0\.1:(\d+)\s+Redis: redis://127\.0\.0\.1:(\d+)/0",
            text,
        )
        assert urls, text
        ports = [int(p) for p in urls.groups()]
        assert ports[0] == web_port
        database = re.search(r"PostgreSQL:\s+postgres://postgres@127\.0\.0\.1:(\d+)/demo\n", text)
        assert database, text
        ports.append(int(database.group(1)))
        assert f"Live table:         http://127.0.0.1:{web_port}/live/" in text
        admin_password = (tmp_path / "demo" / "admin-password").read_text().strip()
        assert f"user admin, password {admin_password}" in text
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=10) as response:
            page = response.read().decode()
        assert "<code>realtime:demo</code>" in page
        assert f"http://127.0.0.1:{ports[1]}" in page
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/live/", timeout=10) as response:
            live_page = response.read().decode()
        assert '<table id="todos">' in live_page
        database_url = f"postgres://postgres@127.0.0.1:{ports[-1]}/demo"
        check_live_page_in_chromium(f"http://127.0.0.1:{web_port}/live/", database_url, tmp_path)
        secret = (tmp_path / "demo" / "jwt-secret").read_text().strip()
        assert secret not in log.read_text()

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        assert process.wait(DEMO_STOP_TIMEOUT) == 130
        assert "dev: stopped" in log.read_text()
        assert not any(_port_open(port) for port in ports)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(DEMO_STOP_TIMEOUT)
