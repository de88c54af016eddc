"""Video sources: the one interface every camera, screen and test pattern implements.

A source runs its blocking library (PyAV, OpenCV) in a reader thread of its own and keeps only
the newest frame: a slow consumer never backs the camera up, it just skips frames.  Consumers
(the compositor, a recorder, a WebRTC track) take `latest()` whenever they need a picture.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Frame:
    """One picture: BGR pixels (height x width x 3), when it was captured, its number."""

    image: Image
    captured: float  # time.monotonic() at capture
    index: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """What telemetry and alarms say about a source."""

    name: str
    connected: bool
    fps: float
    last_frame_age_s: float | None
    reconnects: int
    error: str = ""

    def to_dict(self) -> dict[str, object]:
        """For telemetry."""
        return {
            "name": self.name,
            "connected": self.connected,
            "fps": round(self.fps, 1),
            "last_frame_age_s": None if self.last_frame_age_s is None else round(self.last_frame_age_s, 2),
            "reconnects": self.reconnects,
            "error": self.error,
        }


@dataclass
class _Rate:
    """Frames per second over the last few seconds."""

    window_s: float = 2.0
    times: list[float] = field(default_factory=list)

    def tick(self, now: float) -> None:
        self.times.append(now)
        while self.times and now - self.times[0] > self.window_s:
            self.times.pop(0)

    def fps(self, now: float) -> float:
        recent = [t for t in self.times if now - t <= self.window_s]
        return (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0


class ReaderThread(ABC):
    """A named blocking reader loop in a thread of its own: `start`, `stop`, `stopping`."""

    def __init__(self, name: str) -> None:
        """Nothing runs until `start`."""
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _run(self) -> None:
        """The reader loop; returns once `stopping` is set."""

    def start(self) -> None:
        """Start the reader thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"source[{self.name}].reader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the reader thread and release the device."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    @property
    def stopping(self) -> bool:
        """True once `stop` was called (reader loops check it)."""
        return self._stop.is_set()


class Source(ReaderThread):
    """A named source of frames with a reader thread that keeps only the newest one."""

    def __init__(self, name: str) -> None:
        """Nothing runs until `start`."""
        super().__init__(name)
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._new_frame = threading.Condition(self._lock)
        self._rate = _Rate()
        self.connected = False
        self.reconnects = 0
        self.error = ""
        self._count = 0

    @abstractmethod
    def _run(self) -> None:
        """The reader loop: open, read frames into `_publish`, reconnect on failure, until stopping."""

    def _publish(self, image: Image) -> None:
        """Called by the reader thread with each new picture."""
        now = time.monotonic()
        with self._lock:
            self._count += 1
            self._frame = Frame(image, now, self._count)
            self._rate.tick(now)
            self._new_frame.notify_all()

    def latest(self) -> Frame | None:
        """The newest frame, or None before the first."""
        with self._lock:
            return self._frame

    def wait_newer(self, index: int, timeout: float) -> Frame | None:
        """Block until a frame newer than `index` arrives (or `timeout`); returns the newest."""
        with self._new_frame:
            self._new_frame.wait_for(lambda: self._frame is not None and self._frame.index > index, timeout)
            return self._frame

    def health(self) -> SourceHealth:
        """Connected, fps, age of the newest frame, reconnects, last error."""
        now = time.monotonic()
        with self._lock:
            frame, fps = self._frame, self._rate.fps(now)
        age = None if frame is None else now - frame.captured
        return SourceHealth(self.name, self.connected, fps, age, self.reconnects, self.error)
