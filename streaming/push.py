"""A live push: the programme's packets to one platform, kept going while the lesson goes on.

`Push` is an output of a `streaming.programme.ProgrammeEncoder`.  `put` (on the encoder thread)
only queues: a slow or absent platform never holds the encoder up, it costs this push frames
(the queue, a few seconds deep, is dropped and the push resumes at the next keyframe).  One
thread moves the queue into a push process (`streaming.pusher`, which muxes and sends) and
watches it with deadlines of its own: no ``connected`` within `connect_s`, or no data taken for
`stall_s`, and that process is killed.  Whatever ends a connection, the next attempt comes after
a jittered exponential backoff (`drivers.backoff`) until `stop`; the time without a connection
is a gap, recorded with its reason.  Every message is scrubbed of the target's secrets.

POSIX only (the thread waits on pipes with `poll`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from drivers.backoff import Backoff
from streaming.muxing import Codecs, Encoded
from streaming.pusher import END_GRACE_S, PushProcess, frame
from streaming.target import PushTarget

log = logging.getLogger(__name__)

__all__ = ["Gap", "Push"]

KEEP_GAPS = 20
WRITE_CHUNK = 256 * 1024


def iso(ts: float) -> str:
    """``2026-11-22T08:00:00Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Gap:
    """A time the platform got nothing: from, to (0 while it lasts) and why."""

    started: float
    ended: float
    reason: str

    def to_dict(self, now: float) -> dict[str, object]:
        """For status and telemetry (wall-clock ISO times, seconds so far)."""
        end = self.ended or now
        return {
            "from": iso(self.started), "to": iso(self.ended) if self.ended else "",
            "seconds": round(end - self.started, 1), "reason": self.reason,
        }  # fmt: skip


class Push:
    """The programme to one target, through a push process, reconnected with backoff until stopped."""

    def __init__(
        self,
        name: str,
        target: PushTarget,
        codecs: Codecs,
        *,
        request_keyframe: Callable[[], None] = lambda: None,
        backoff: Backoff | None = None,
        connect_s: float = 10.0,
        stall_s: float = 10.0,
        queue_s: float = 3.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`name` is the target's name (in status and alarms); `request_keyframe` asks the encoder for an IDR."""
        self.name = f"push[{name}]"
        self.target_name = name
        self.target = target
        self.codecs = codecs
        self.connect_s = connect_s
        self.stall_s = stall_s
        self._request_keyframe = request_keyframe
        self._clock = clock
        self._backoff = backoff or Backoff(base=1.0, cap=30.0)
        self._max_video = max(2, round(queue_s * float(codecs.video.fps)))
        self._lock = threading.Lock()
        self._queue: deque[Encoded] = deque()
        self._queued_video = 0
        self._skipping = True  # every connection starts at a keyframe
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._wake_lock = threading.Lock()  # no write into the wake pipe once it is closed (its fd reused)
        self._stop = threading.Event()
        self._ended = threading.Event()  # the encoder ended: nothing more will come
        self._first = threading.Event()  # the first attempt is decided (connected or failed)
        self._thread: threading.Thread | None = None
        self.state = "connecting"
        self.error = ""
        self.attempts = 0
        self.connections = 0
        self.dropped = 0
        self.bytes_sent = 0
        self.since = self._clock()
        self.gaps: list[Gap] = []

    # -- the encoder's side --------------------------------------------------------------------

    def put(self, packet: Encoded) -> None:
        """Queue one packet (encoder thread); a full queue is dropped and the push resumes at a keyframe."""
        with self._lock:
            if packet.kind == "video" and self._skipping:
                if not packet.keyframe:
                    self.dropped += 1
                    return
                self._skipping = False
            elif self._skipping:
                return
            if packet.kind == "video" and self._queued_video >= self._max_video:
                self.dropped += len(self._queue) + 1
                self._queue.clear()
                self._queued_video = 0
                self._skipping = True
                self._request_keyframe()
                return
            self._queue.append(packet)
            self._queued_video += packet.kind == "video"
        self._wake()

    def end(self, error: str) -> None:
        """The encoder stopped: send what is queued, then end the push."""
        if error:
            self.error = f"the programme's encoder failed: {error}"
        self._ended.set()
        self._wake()

    # -- control --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start pushing (the first connection attempt begins at once)."""
        self._thread = threading.Thread(target=self._run, name=f"{self.name}.send", daemon=True)
        self._thread.start()

    def wait_first(self, timeout: float) -> bool:
        """Block until the first attempt connected (True) or failed (False, `error` says why)."""
        self._first.wait(timeout)
        return self.state == "live"

    def stop(self, timeout: float = 2 * END_GRACE_S) -> None:
        """End the push: the process gets the end of the stream (its trailer), then is reaped."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("%s: the sending thread did not end within %.0f s", self.name, timeout)
                return  # it still polls the wake pipe: left open
        with self._wake_lock:
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_r = self._wake_w = -1

    @property
    def running(self) -> bool:
        """True while the sending thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict[str, object]:
        """State, the redacted URL, connections, gaps (the open one too), frames dropped, bytes sent."""
        now = self._clock()
        gaps = list(self.gaps)
        return {
            "target": self.target_name, "url": self.target.redacted, "state": self.state,
            "since": iso(self.since), "attempts": self.attempts, "connections": self.connections,
            "gaps": len(gaps), "down_s": round(sum((g.ended or now) - g.started for g in gaps), 1),
            "last_gap": gaps[-1].to_dict(now) if gaps else None, "dropped": self.dropped,
            "bytes_sent": self.bytes_sent, "last_error": self.error,
        }  # fmt: skip

    # -- the sending thread ---------------------------------------------------------------------

    def _wake(self) -> None:
        with self._wake_lock, contextlib.suppress(BlockingIOError, OSError):
            if self._wake_w >= 0:
                os.write(self._wake_w, b"\0")

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.attempts += 1
                error = self._session()
                if self._stop.is_set() or (self._ended.is_set() and not error):
                    break
                self._down(error or "the push process ended")
                self._first.set()
                if self._ended.is_set():
                    break
                delay = self._backoff.next_delay()
                log.info("%s: retrying in %.1f s", self.name, delay)
                self._stop.wait(delay)
        except Exception as exc:  # a bug here must not take the agent's thread pool down with it
            self._down(self.target.scrub(f"push failed: {exc}"))
            log.exception("%s failed", self.name)
        finally:
            self.state = "stopped"
            self._first.set()
            self._close_gap()

    def _down(self, why: str) -> None:
        why = self.target.scrub(why)
        self.error = why
        if self.state == "live":
            log.warning("%s: %s lost: %s", self.name, self.target.redacted, why)
        if not self.gaps or self.gaps[-1].ended:
            self.gaps = [*self.gaps[-(KEEP_GAPS - 1) :], Gap(self._clock(), 0.0, why)]
        self.state = "retrying"
        self.since = self._clock()

    def _ready(self) -> None:
        with self._lock:  # the stream starts at a fresh keyframe, not with what queued while connecting
            self._queue.clear()
            self._queued_video = 0
            self._skipping = True
        self._request_keyframe()

    def _up(self) -> None:
        self.connections += 1
        self.state = "live"
        self.since = self._clock()
        self._backoff.reset()
        self._close_gap()
        log.info("%s: live to %s", self.name, self.target.redacted)
        self._first.set()

    def _close_gap(self) -> None:
        if self.gaps and not self.gaps[-1].ended:
            last = self.gaps[-1]
            self.gaps[-1] = Gap(last.started, self._clock(), last.reason)

    def _session(self) -> str:
        """One push process from start to end; why it ended ("" when asked to)."""
        session = PushProcess.spawn(self.target, self.codecs)
        try:
            return self._pump(session)
        finally:
            session.close()

    def _pump(self, session: PushProcess) -> str:
        """Feed the process until it ends, the push is stopped, or a deadline passes; why it ended."""
        deadline = time.monotonic() + self.connect_s
        poller = select.poll()
        poller.register(session.stdout, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        stopping_since = 0.0
        while True:
            if self._stop.is_set() and not session.ready:
                session.kill()
                return ""
            stopping_since = stopping_since or (time.monotonic() if self._stop.is_set() else 0.0)
            closing = self._stop.is_set() or (self._ended.is_set() and not self._queue)
            self._fill(session)
            if closing and not session.pending:
                return self._finish(session)
            if stopping_since and time.monotonic() - stopping_since > END_GRACE_S:
                session.kill()  # it would not take the end of the stream in time
                return ""
            if session.pending:
                poller.register(session.stdin, select.POLLOUT)
            else:
                with contextlib.suppress(KeyError):
                    poller.unregister(session.stdin)
            events = dict(poller.poll(500))
            if events.get(self._wake_r):
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 4096)
            if events.get(session.stdout) and not self._read(session):
                return session.error or f"the push process exited ({session.process.wait()})"
            if events.get(session.stdin):
                self._write(session)
            now = time.monotonic()
            if not session.connected and now > deadline:
                session.kill()
                return f"no answer from {self.target.redacted} within {self.connect_s:g} s"
            if session.ready and session.pending and now - session.progress > self.stall_s:
                session.kill()
                return f"{self.target.redacted} took no data for {self.stall_s:g} s"

    def _fill(self, session: PushProcess) -> None:
        """Move queued packets into the bytes to write (once the process takes them)."""
        if not session.ready or len(session.pending) >= WRITE_CHUNK:
            return
        with self._lock:
            while self._queue and len(session.pending) < WRITE_CHUNK:
                packet = self._queue.popleft()
                self._queued_video -= packet.kind == "video"
                session.pending += frame(packet)

    def _write(self, session: PushProcess) -> None:
        try:
            written = os.write(session.stdin, session.pending[:WRITE_CHUNK])
        except BlockingIOError:
            return
        except (BrokenPipeError, OSError):
            session.pending.clear()  # the process is gone; its last words on stdout say why
            return
        del session.pending[:written]
        self.bytes_sent += written
        session.progress = time.monotonic()

    def _read(self, session: PushProcess) -> bool:
        """Take the process's lines; False once it closed its stdout (it is ending)."""
        try:
            chunk = os.read(session.stdout, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        session.lines += chunk
        while b"\n" in session.lines:
            line, _, rest = session.lines.partition(b"\n")
            session.lines = bytearray(rest)
            self._line(session, line.decode("utf-8", "replace"))
        return True

    def _line(self, session: PushProcess, text: str) -> None:
        try:
            message = json.loads(text)
            event, words = str(message["event"]), self.target.scrub(str(message.get("message", "")))
        except (ValueError, KeyError, TypeError):
            event, words = "log", self.target.scrub(text.strip())
        if event == "ready" and not session.ready:
            session.ready = True
            session.progress = time.monotonic()
            self._ready()
        elif event == "connected" and not session.connected:
            session.connected = True
            self._up()
        elif event == "error":
            session.error = words
        elif words:
            log.debug("%s: %s", self.name, words)

    def _finish(self, session: PushProcess) -> str:
        """The end of the stream: close the process's stdin (it writes its trailer), read its last lines."""
        with contextlib.suppress(OSError):
            if session.process.stdin is not None:
                session.process.stdin.close()
        poller = select.poll()
        poller.register(session.stdout, select.POLLIN)
        deadline = time.monotonic() + END_GRACE_S
        while time.monotonic() < deadline:
            if not poller.poll(max(1, int(1000 * (deadline - time.monotonic())))) or not self._read(session):
                break
        return session.error
