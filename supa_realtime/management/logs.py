"""Log output of the management commands: stderr lines for ``supa_realtime`` at ``-v``'s level."""

from __future__ import annotations

import logging
from typing import Final

__all__ = ["LEVELS", "configure_logging"]

LEVELS: Final = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}
"""Django's ``--verbosity`` (0-3) → the ``supa_realtime`` logger's level."""

FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(verbosity: int) -> None:
    """Send ``supa_realtime``'s log lines to stderr unless the project configured logging.

    Args:
        verbosity: the command's ``--verbosity``; 1 (Django's default) logs INFO and above.
    """
    package_logger = logging.getLogger("supa_realtime")
    if package_logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    package_logger.addHandler(handler)
    package_logger.setLevel(LEVELS.get(verbosity, logging.INFO))
