"""Local capture: USB cameras (OpenCV), the courseware screen (PyAV x11grab), the microphone (PyAV).

Each runs its blocking library in a reader thread of its own and reopens the device with
backoff when it fails (a camera unplugged, the X display restarted, the microphone taken by
another program).  The two video sources are `streaming.source.Source`s; the microphone has
its own small interface, because audio is a stream of sample blocks, not a newest picture.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import cast

import av
import av.error
import cv2
from av.audio.frame import AudioFrame
from av.container import InputContainer

from drivers.backoff import Backoff
from streaming.audio import AudioFeed
from streaming.reconnect import ReconnectingSource, SourceUnavailable
from streaming.source import Image, ReaderThread

log = logging.getLogger(__name__)


class UsbCameraSource(ReconnectingSource):
    """A USB (UVC) camera through OpenCV: a device index (0) or path ("/dev/video2").

    `size` (width, height) and `fps` are requests: the camera may deliver something else, and
    the pictures are published as it delivers them.
    """

    def __init__(
        self,
        name: str,
        device: int | str,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        """Nothing opens until `start`."""
        super().__init__(name, f"USB camera {device}", backoff=backoff)
        self.device = device
        self.size = size
        self.fps = fps

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self.device)
        if not capture.isOpened():
            capture.release()
            raise SourceUnavailable(f"{self.where}: cannot open (unplugged, or in use by another program?)")
        if self.size is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        if self.fps is not None:
            capture.set(cv2.CAP_PROP_FPS, self.fps)
        return capture

    def _read(self) -> None:
        capture = self._open()
        try:
            while not self.stopping:
                ok, image = capture.read()
                if not ok or image is None:
                    raise SourceUnavailable(f"{self.where}: no picture (unplugged?)")
                self._deliver(cast(Image, image))  # OpenCV hands out uint8 BGR
        finally:
            capture.release()


class ScreenSource(ReconnectingSource):
    """The courseware screen of an X11 display through PyAV's x11grab.

    Linux only; on Windows a sibling class would open `desktop` with format "gdigrab" and the
    same options, overriding `_open` alone.
    """

    def __init__(
        self,
        name: str,
        display: str = ":0",
        size: tuple[int, int] | None = None,
        fps: float = 15,
        *,
        timeout_s: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        """`size` grabs the top-left (width, height) of the display; None grabs all of it."""
        super().__init__(name, f"screen {display}", backoff=backoff)
        self.display = display
        self.size = size
        self.fps = fps
        self.timeout_s = timeout_s

    def _open(self) -> InputContainer:
        options = {"framerate": f"{self.fps:g}"}
        if self.size is not None:
            options["video_size"] = f"{self.size[0]}x{self.size[1]}"
        try:
            return av.open(self.display, format="x11grab", options=options, timeout=self.timeout_s)
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceUnavailable(f"{self.where}: cannot open the X display: {exc.strerror or exc}") from exc

    def _read(self) -> None:
        container = self._open()
        try:
            for frame in container.decode(video=0):
                if self.stopping:
                    return
                self._deliver(cast(Image, frame.to_ndarray(format="bgr24")))  # bgr24 is uint8
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceUnavailable(f"{self.where}: {exc.strerror or exc}") from exc
        finally:
            container.close()


class MicrophoneSource(ReaderThread):
    """A microphone through PyAV (ALSA or PulseAudio): the newest audio frames in a bounded deque.

    Not a video `Source`: consumers take `frames()` (the newest `keep` blocks of samples, oldest
    first) or `take()` (and clear them).  It reopens the device with backoff like the cameras.
    """

    def __init__(
        self,
        name: str,
        device: str = "default",
        *,
        backend: str = "alsa",
        sample_rate: int = 48000,
        channels: int = 1,
        keep: int = 100,
        backoff: Backoff | None = None,
    ) -> None:
        """`backend` is the FFmpeg input format ("alsa" or "pulse"); nothing opens until `start`."""
        super().__init__(name)
        self.device = device
        self.backend = backend
        self.sample_rate = sample_rate
        self.channels = channels
        self.where = f"microphone {backend}:{device}"
        self._backoff = backoff if backoff is not None else Backoff()
        self._frames: deque[AudioFrame] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.connected = False
        self.error = ""
        self.reconnects = 0
        self.last_frame_at: float | None = None  # time.monotonic()
        self.audio: AudioFeed | None = None  # set it to have every frame pushed into it (for recording)

    def frames(self) -> list[AudioFrame]:
        """The newest audio frames, oldest first."""
        with self._lock:
            return list(self._frames)

    def take(self) -> list[AudioFrame]:
        """The newest audio frames, oldest first, removing them."""
        with self._lock:
            taken = list(self._frames)
            self._frames.clear()
            return taken

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._read()
                    self.error = f"{self.where}: the stream ended"
                except SourceUnavailable as exc:
                    self.error = str(exc)
                self.connected = False
                log.warning("%s: %s", self.name, self.error)
                if self._stop.wait(self._backoff.next_delay()):
                    break
                self.reconnects += 1
        finally:
            self.connected = False

    def _alsa_hint(self) -> str:
        # PyAV's wheel bundles an alsa-lib that looks for its configuration under its build prefix
        if self.backend != "alsa" or os.environ.get("ALSA_CONFIG_PATH"):
            return ""
        return " (PyAV's bundled ALSA needs ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf to find device names)"

    def _read(self) -> None:
        options = {"sample_rate": str(self.sample_rate), "channels": str(self.channels)}
        try:
            container = av.open(self.device, format=self.backend, options=options, timeout=5.0)
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceUnavailable(f"{self.where}: cannot open: {exc.strerror or exc}{self._alsa_hint()}") from exc
        try:
            for frame in container.decode(audio=0):
                if self._stop.is_set():
                    return
                with self._lock:
                    self._frames.append(frame)
                if (feed := self.audio) is not None:
                    feed.push(frame)
                self.last_frame_at = time.monotonic()
                if not self.connected:
                    self._backoff.reset()
                    self.connected, self.error = True, ""
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceUnavailable(f"{self.where}: {exc.strerror or exc}") from exc
        finally:
            container.close()
