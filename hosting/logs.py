"""Logging for both programs: one line per event on stderr, with its level where journald can read it.

Under systemd (``StandardError=journal``) each line starts with the syslog priority in angle
brackets (``<4>`` for a warning), which journald takes as the entry's level and strips, so
``journalctl -p warning -u classroom-agent`` filters by it; the journal stamps the time itself.
On a terminal a line carries the time and the level's name instead.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"

# logging's levels -> syslog priorities (sd-daemon(3)): err 3, warning 4, info 6, debug 7.
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def priority(level: int) -> int:
    """The syslog priority journald files a record of this logging level under."""
    return next((p for floor, p in _PRIORITIES if level >= floor), 7)


class JournalFormatter(logging.Formatter):
    """``<priority>name: message``; a traceback's lines carry the same priority, so none lands as a notice."""

    def __init__(self) -> None:
        """The journal's format: no time stamp (journald adds its own)."""
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The record as one or more lines, each prefixed with the record's priority."""
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def writes_to_journal(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """True when `stream` is the journald stream systemd connected (``$JOURNAL_STREAM`` names its device:inode)."""
    named = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = named.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        found = os.fstat(stream.fileno())
    except (OSError, ValueError):  # no descriptor (a test's StringIO) or a closed one
        return False
    return (found.st_dev, found.st_ino) == (int(device), int(inode))


def configure_logging(level: int, stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's records at `level` and above to `stream` (stderr), in the journal's form when it is one."""
    target = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(target)
    handler.setFormatter(JournalFormatter() if writes_to_journal(target) else logging.Formatter(PLAIN_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    return handler
