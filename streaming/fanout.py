"""One encoder's packets to many subscribers: bounded queues and the encoder thread's lifetime.

Each subscriber's `PacketQueue` holds a few packets.  When a subscriber falls behind, its queue
drops what it holds and then skips until the next keyframe (a P-frame after a gap would smear
the picture) and asks the encoder for one, so delay never builds up.  A `SharedEncoder` runs its
thread only while it has subscribers; a new subscriber starts at a keyframe it asks for.  The
codecs themselves are in `streaming.encoding`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable

import av.error
from av.packet import Packet

from streaming.errors import StreamingError

log = logging.getLogger(__name__)

__all__ = ["PacketQueue", "QueueClosed", "SharedEncoder"]


class QueueClosed(StreamingError):
    """The encoder let go of this queue (unsubscribed or shut down)."""


class PacketQueue:
    """A subscriber's few newest packets, filled by an encoder thread and read with `await get()`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request_keyframe: Callable[[], None], maxsize: int = 4) -> None:
        """`request_keyframe` is called (from the loop) when the queue had to drop packets."""
        self._loop = loop
        self._request_keyframe = request_keyframe
        self._packets: deque[Packet] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self._skipping = True  # a new subscriber waits for a keyframe
        self._closed = False
        self.delivered = 0
        self.dropped = 0

    def put_threadsafe(self, packet: Packet, keyframe: bool) -> None:
        """Hand a packet over from the encoder thread (a closed loop just drops it)."""
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening any more
            self._loop.call_soon_threadsafe(self._put, packet, keyframe)

    def _put(self, packet: Packet, keyframe: bool) -> None:
        if self._closed:
            return
        if keyframe:
            self._skipping = False
        elif self._skipping:
            self.dropped += 1
            return
        if len(self._packets) >= self._maxsize:
            self.dropped += len(self._packets)
            self._packets.clear()
            if not keyframe:  # what follows would refer to what was dropped
                self._skipping = True
                self.dropped += 1
                self._request_keyframe()
                return
        self._packets.append(packet)
        self._ready.set()

    def close(self) -> None:
        """Wake the reader with `QueueClosed` (thread-safe)."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._close)

    def _close(self) -> None:
        self._closed = True
        self._packets.clear()
        self._ready.set()

    async def get(self) -> Packet:
        """The oldest packet; raises `QueueClosed` once the encoder let go of the queue."""
        while not self._packets:
            if self._closed:
                raise QueueClosed("the encoder closed this queue")
            self._ready.clear()
            await self._ready.wait()
        self.delivered += 1
        return self._packets.popleft()


class _Meter:
    """Packets, bytes and keyframes, with a rate over the last two seconds."""

    def __init__(self) -> None:
        self.frames = 0
        self.keyframes = 0
        self._recent: deque[tuple[float, int]] = deque()

    def add(self, size: int, keyframe: bool) -> None:
        now = time.monotonic()
        self.frames += 1
        self.keyframes += keyframe
        self._recent.append((now, size))
        while self._recent and now - self._recent[0][0] > 2.0:
            self._recent.popleft()

    def rates(self) -> tuple[float, float]:
        """(packets per second, bits per second) over the window."""
        recent = list(self._recent)
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return 0.0, 0.0
        span = recent[-1][0] - recent[0][0]
        return (len(recent) - 1) / span, 8 * sum(size for _, size in recent[1:]) / span


class SharedEncoder(ABC):
    """Subscribers, the encoder thread's start/stop, keyframe requests and stats (for video and audio)."""

    kind = "media"

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._queues: list[PacketQueue] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._keyframe = threading.Event()
        self._meter = _Meter()
        self.error = ""

    def subscribe(self) -> PacketQueue:
        """A new queue of this source's packets (call from the event loop); starts the thread if idle."""
        queue = PacketQueue(asyncio.get_running_loop(), self.request_keyframe)
        with self._lock:
            self._queues.append(queue)
            self._stop.clear()  # cancels a stop still on its way (the last subscriber just left)
            starting = self._thread is None
            if starting:
                self._thread = threading.Thread(target=self._guarded_run, name=f"{self.kind}[{self.name}].encoder")
        self.request_keyframe()
        if starting and self._thread is not None:
            self._thread.start()
        return queue

    def unsubscribe(self, queue: PacketQueue) -> None:
        """Forget `queue` (idempotent); the thread stops after the last subscriber leaves."""
        with self._lock:
            if queue in self._queues:
                self._queues.remove(queue)
            last = not self._queues
            if last:
                self._stop.set()  # the thread notices within one frame; nothing blocks here
        queue.close()

    def close(self, timeout: float = 5.0) -> None:
        """Drop every subscriber and wait for the thread (for shutdown, not from the event loop)."""
        with self._lock:
            queues, self._queues = self._queues, []
            self._stop.set()
            thread = self._thread
        for queue in queues:
            queue.close()
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while the encoder thread is alive."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    @property
    def subscribers(self) -> int:
        """How many queues are subscribed."""
        with self._lock:
            return len(self._queues)

    def request_keyframe(self) -> None:
        """Make the next frame a keyframe; any number of requests before it give one."""
        self._keyframe.set()

    def stats(self) -> dict[str, object]:
        """frames_encoded, fps, bitrate_bps, keyframes, subscribers (for telemetry)."""
        fps, bps = self._meter.rates()
        return {
            "frames_encoded": self._meter.frames,
            "fps": round(fps, 1),
            "bitrate_bps": int(bps),
            "keyframes": self._meter.keyframes,
            "subscribers": self.subscribers,
            "error": self.error,
        }

    def _deliver(self, packet: Packet, keyframe: bool) -> None:
        self._meter.add(packet.size, keyframe)
        with self._lock:
            queues = list(self._queues)
        for queue in queues:
            queue.put_threadsafe(packet, keyframe)

    def _guarded_run(self) -> None:
        failed = False
        try:
            self._run()
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            failed = True
            self.error = f"{self.kind} encoder {self.name!r}: {exc}"
            log.error("%s", self.error)
        finally:
            with self._lock:
                self._thread = None
                restart = bool(self._queues) and not self._stop.is_set() and not failed
            if restart:  # someone subscribed while this thread was on its way out
                self._restart()

    def _restart(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._guarded_run, name=f"{self.kind}[{self.name}].encoder")
            thread = self._thread
        thread.start()

    def _pace(self, start: float, index: int, period: float) -> int:
        """Sleep until frame `index + 1` is due; returns the next index (skipping slots when late)."""
        index += 1
        now = time.monotonic()
        if now - (start + index * period) > period:  # fell behind: skip, never burst
            index = int((now - start) / period) + 1
        self._stop.wait(max(0.0, start + index * period - time.monotonic()))
        return index

    @abstractmethod
    def _run(self) -> None:
        """The encoder thread's loop: encode and `_deliver` until stopped."""
