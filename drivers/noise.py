"""Reports of unreadable bytes, truncated and rate-limited: a flood costs a few log lines, not gigabytes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: How much of a piece of noise a log line shows (as hex); the rest is only counted.
SHOWN_BYTES = 64
#: At most one noise line per source in this many seconds; the others are counted, then summed up.
NOISE_LOG_INTERVAL_S = 10.0


def preview(data: bytes, shown: int = SHOWN_BYTES) -> str:
    """The first `shown` bytes of `data` as hex, with ``…`` when there are more."""
    head = data[:shown].hex(" ")
    return f"{head} …" if len(data) > shown else head


class NoiseLog:
    """Logs noise from one device or port: at most one line per interval, each line bounded.

    The first piece is logged at once; later ones within the interval are held back and
    counted, and the next line says how many reports and bytes were held back.
    """

    def __init__(
        self,
        logger: logging.Logger,
        source: str,
        *,
        interval: float = NOISE_LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`source` starts each line (the device id or the port)."""
        self.logger = logger
        self.source = source
        self.interval = interval
        self.clock = clock
        self._last = float("-inf")
        self.held_reports = 0
        self.held_bytes = 0

    def report(self, data: bytes, reason: str, dropped: int = 0) -> bool:
        """Log `data` (`dropped`: bytes let go unread) unless a line went out lately; True if logged."""
        now = self.clock()
        if now - self._last < self.interval:
            self.held_reports += 1
            self.held_bytes += len(data)
            return False
        self._last = now
        self.logger.warning(
            "%s: %s: %d bytes: %s%s%s",
            self.source,
            reason,
            len(data),
            preview(data),
            self._held(),
            f"; {dropped} bytes dropped unread" if dropped else "",
        )
        return True

    def flush(self, *, force: bool = False) -> None:
        """Log what was held back, once the interval is over (or now, with `force`)."""
        if not self.held_reports or (not force and self.clock() - self._last < self.interval):
            return
        self._last = self.clock()
        self.logger.warning("%s: noise%s", self.source, self._held())

    def _held(self) -> str:
        if not self.held_reports:
            return ""
        text = f" (+{self.held_reports} more reports, {self.held_bytes} bytes, not logged)"
        self.held_reports = self.held_bytes = 0
        return text
