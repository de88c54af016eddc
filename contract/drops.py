"""Messages dropped for breaking the contract: counted, and logged once per topic per minute with the reason.

A flood of bad messages must not flood the log too (a log line costs more than the message), nor
grow memory: the per-topic clocks are forgotten once they are older than the interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

LOG_EVERY_S = 60.0
# Topics remembered at once; past this, clocks older than the interval are forgotten.
MAX_TOPICS = 4096


class Drops:
    """Counts dropped messages; logs the first of each topic in every `every` seconds, with how many were skipped."""

    def __init__(
        self,
        log: logging.Logger,
        *,
        every: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Log through `log` at warning level; `clock` is injected for tests."""
        self._log = log
        self._every = every
        self._clock = clock
        self._last: dict[str, tuple[float, int]] = {}  # topic -> (logged at, dropped since without a line)
        self.count = 0

    def drop(self, topic: str, reason: str) -> None:
        """Count one dropped message on `topic`; log it unless this topic was logged within the interval."""
        self.count += 1
        now = self._clock()
        logged = self._last.get(topic)
        if logged is not None and now - logged[0] < self._every:
            self._last[topic] = (logged[0], logged[1] + 1)
            return
        skipped = f" ({logged[1]} more dropped on this topic since the last line)" if logged and logged[1] else ""
        self._log.warning("dropped a message on %s: %s%s", topic[:300], reason, skipped)
        if len(self._last) >= MAX_TOPICS:
            self._last = {t: v for t, v in self._last.items() if now - v[0] < self._every}
            if len(self._last) >= MAX_TOPICS:  # a flood of distinct topics: forget them all rather than grow
                self._last.clear()
        self._last[topic] = (now, 0)
