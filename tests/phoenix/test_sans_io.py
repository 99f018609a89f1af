"""The protocol core stays sans-I/O: importing it pulls in no asyncio, websockets or Django."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import supa_realtime.phoenix

FORBIDDEN = ("asyncio", "websockets", "django", "channels", "daphne", "uvicorn")

_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
forbidden = tuple(json.loads({forbidden!r}))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in forbidden)))
"""


def _modules() -> list[str]:
    package = supa_realtime.phoenix
    return [package.__name__] + [
        f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)
    ]


def test_every_phoenix_module_is_found() -> None:
    names = _modules()
    for expected in ("serializer", "message", "constants", "filters"):
        assert f"supa_realtime.phoenix.{expected}" in names


def test_importing_the_core_imports_no_io_framework() -> None:
    probe = _PROBE.format(forbidden=json.dumps(FORBIDDEN))
    result = subprocess.run(
        [sys.executable, "-c", probe, *_modules()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_the_probe_would_notice() -> None:
    probe = _PROBE.format(forbidden=json.dumps(FORBIDDEN))
    result = subprocess.run(
        [sys.executable, "-c", probe, "asyncio"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "asyncio" in json.loads(result.stdout)
