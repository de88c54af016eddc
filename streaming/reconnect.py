"""Sources that reopen their device after every failure, with backoff, and remember the gaps.

A camera that drops (network, power, a loose USB cable) must come back by itself, and a
recorder must be able to say where the recording has a hole.  `ReconnectingSource` runs the
reader loop once for every kind of device: open and read (the subclass's `_read`), on failure
mark the source disconnected with a message naming the device, wait `Backoff.next_delay()`
(waking at once on `stop`), try again.  An `Outage` is recorded for every interruption of a
source that had delivered frames, from its last frame before the failure to its first frame after.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections import deque
from dataclasses import dataclass

from drivers.backoff import Backoff
from streaming.errors import StreamingError
from streaming.source import Image, Source

log = logging.getLogger(__name__)

OUTAGES_KEPT = 256


class SourceUnavailable(StreamingError):
    """A source cannot be opened or stopped delivering: its reader retries with backoff."""


@dataclass(frozen=True, slots=True)
class Outage:
    """One gap in a source's frames: wall-clock start and end, its length, and why it happened."""

    started: float  # time.time() of the last frame before the gap
    ended: float  # time.time() of the first frame after it
    seconds: float  # measured on the monotonic clock
    error: str

    def to_dict(self) -> dict[str, object]:
        """For telemetry and a recording's index."""
        return {"started": self.started, "ended": self.ended, "seconds": round(self.seconds, 3), "error": self.error}


class ReconnectingSource(Source):
    """A `Source` whose reader reopens the device with jittered backoff and records outages.

    `reconnects` counts attempts to reopen after a failure (it grows while a camera stays
    down); `outage_count` and `outages()` count the interruptions that ended with frames again.
    """

    def __init__(self, name: str, where: str, *, backoff: Backoff | None = None) -> None:
        """`where` names the device in messages, e.g. "RTSP rtsp://10.0.0.5/main" or "USB camera 0"."""
        super().__init__(name)
        self.where = where
        self._backoff = backoff if backoff is not None else Backoff()
        self._outages: deque[Outage] = deque(maxlen=OUTAGES_KEPT)
        self._down_since: tuple[float, float] | None = None  # (wall, monotonic) of the last good frame
        self.outage_count = 0

    @abstractmethod
    def _read(self) -> None:
        """Open the device and `_deliver` pictures until `stopping` or the end of the stream; close it.

        Raise `SourceUnavailable` (with a message naming `where`) when it cannot be opened or fails.
        """

    def _run(self) -> None:
        try:
            while not self.stopping:
                reason = self._read_once()
                if self.stopping:
                    break
                self._lost(reason)
                if self._stop.wait(self._backoff.next_delay()):
                    break
                self.reconnects += 1
        finally:
            self.connected = False

    def _read_once(self) -> str:
        """Run `_read` once; the reason it stopped, as the source's error message."""
        try:
            self._read()
        except SourceUnavailable as exc:
            return str(exc)
        except Exception as exc:  # a reader thread that dies silently is worse than one that retries
            log.exception("%s: unexpected error in the reader", self.where)
            return f"{self.where}: unexpected {type(exc).__name__}: {exc}"
        return f"{self.where}: the stream ended"

    def _deliver(self, image: Image) -> None:
        """Publish a picture; the first one after a failure ends the outage and resets the backoff."""
        self._publish(image)
        if not self.connected:
            self._recovered()

    def _lost(self, reason: str) -> None:
        if self.connected:
            frame = self.latest()
            now_wall, now_mono = time.time(), time.monotonic()
            last_mono = frame.captured if frame is not None else now_mono
            self._down_since = (now_wall - (now_mono - last_mono), last_mono)
            log.warning("%s: disconnected: %s", self.name, reason)
        elif reason != self.error:
            log.warning("%s: %s", self.name, reason)
        self.connected = False
        self.error = reason

    def _recovered(self) -> None:
        self._backoff.reset()
        down, self._down_since = self._down_since, None
        if down is not None:
            outage = Outage(down[0], time.time(), time.monotonic() - down[1], self.error)
            with self._lock:
                self._outages.append(outage)
                self.outage_count += 1
            log.info("%s: frames again after %.1f s", self.name, outage.seconds)
        self.error = ""
        self.connected = True

    def outages(self) -> list[Outage]:
        """The interruptions that have ended, oldest first (the last `OUTAGES_KEPT` of them)."""
        with self._lock:
            return list(self._outages)

    def down_for(self) -> float | None:
        """Seconds since the last frame, while a source that had frames is down; else None."""
        down = self._down_since
        return None if down is None else time.monotonic() - down[1]
