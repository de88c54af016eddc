"""The push process: the programme's packets on stdin, muxed with PyAV and sent to one live target.

``python -m streaming.pusher`` is started by `streaming.push.Push`, one process per connection
attempt.  A process of its own because FFmpeg's network output has no deadline of ours: a
platform that stops reading (or accepts the connection and never answers) blocks a write for as
long as TCP allows, which for a stopped server is forever.  The agent kills a process that
makes no progress and starts another; a thread could not be taken back that way.

stdin: one JSON line ``{"url", "codecs"}`` (the URL with its key comes this way, never on
the command line, where every user of the PC could read it in the process list), then packets,
each a `HEADER` (kind ``v``/``a``, keyframe, pts, dts, duration, size) and its bytes.
stdout: JSON lines ``{"event": "ready"}`` (send packets), ``{"event": "connected"}`` (the target
has the stream), ``{"event": "log", "message"}`` and at the end
``{"event": "error", "message"}``; every message has the target's secrets scrubbed.

`PushProcess` is the agent's side of it (`streaming.push` drives it); `frame` and `read_packet`
are the pipe's two ends.

RTMP(S) goes out as FLV through PyAV's own FFmpeg.  That FFmpeg has no SRT (it is built without
libsrt), so SRT is muxed to MPEG-TS here and sent by `streaming.srt` (libsrt, in this process):
no other program is started, so the streamid and passphrase appear on no command line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import av
import av.error
import av.logging

from streaming.errors import StreamingError
from streaming.muxing import Codecs, Encoded, add_streams
from streaming.srt import MESSAGE, SrtSender, open_sender
from streaming.target import PushTarget, TargetError, parse_target

HEADER = struct.Struct("!cBqqiI")
END_GRACE_S = 5.0  # how long a push process may take to send the end of the stream and exit
MAX_PACKET = 32 * 2**20


def frame(packet: Encoded) -> bytes:
    """One packet as it goes down the pipe."""
    kind = b"v" if packet.kind == "video" else b"a"
    return HEADER.pack(kind, packet.keyframe, packet.pts, packet.dts, packet.duration, len(packet.data)) + packet.data


def read_packet(stream: IO[bytes]) -> Encoded | None:
    """The next packet from the pipe; None at its end.  ValueError for a damaged one."""
    head = stream.read(HEADER.size)
    if not head:
        return None
    if len(head) < HEADER.size:
        raise ValueError("the pipe ended inside a packet header")
    kind, keyframe, pts, dts, duration, size = HEADER.unpack(head)
    if kind not in (b"v", b"a") or size > MAX_PACKET:
        raise ValueError(f"bad packet header (kind {kind!r}, {size} bytes)")
    data = stream.read(size)
    if len(data) < size:
        raise ValueError("the pipe ended inside a packet")
    return Encoded("video" if kind == b"v" else "audio", data, pts, dts, duration, bool(keyframe))


class PushProcess:
    """The agent's side of one push process: its pipes (non-blocking), the bytes still to write, what it said."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.stdin = process.stdin.fileno()
        self.stdout = process.stdout.fileno()
        os.set_blocking(self.stdin, False)
        os.set_blocking(self.stdout, False)
        self.pending = bytearray()
        self.lines = bytearray()
        self.ready = False  # the process takes packets
        self.connected = False  # the target has the stream
        self.error = ""
        self.progress = time.monotonic()

    @classmethod
    def spawn(cls, target: PushTarget, codecs: Codecs) -> PushProcess:
        """Start ``python -m streaming.pusher`` in a process group of its own, its header queued for its stdin."""
        process = subprocess.Popen(
            [sys.executable, "-m", "streaming.pusher"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        started = cls(process)
        started.pending += (json.dumps({"url": target.url, "codecs": codecs.to_dict()}) + "\n").encode()
        return started

    def kill(self) -> None:
        """The process (and anything in its process group), at once."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def close(self) -> None:
        """Reap the process and close our ends of its pipes."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(END_GRACE_S)
        if self.process.poll() is None:
            self.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()


class _Say:
    """JSON lines on stdout, each message scrubbed of the target's secrets."""

    def __init__(self, target: PushTarget | None) -> None:
        self.target = target
        self.lock = threading.Lock()
        self.last_log = ""

    def __call__(self, event: str, message: str = "") -> None:
        if self.target is not None:
            message = self.target.scrub(message)
        line = json.dumps({"event": event, "message": message}, ensure_ascii=False)
        with self.lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


class _LogToParent(logging.Handler):
    """FFmpeg's own messages (through PyAV's logging) to the parent, the newest kept for the error."""

    def __init__(self, say: _Say) -> None:
        super().__init__(logging.WARNING)
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().strip()
        if message:
            self.say.last_log = message
            self.say("log", message)


class PublishError(StreamingError):
    """The target did not take the stream (a refused connection, a refused publish)."""


def publish_failure(exc: av.error.FFmpegError) -> str:
    """What a failed RTMP connect-and-publish means, in words a technician acts on."""
    errno = getattr(exc, "errno", None)
    if errno in (111, 113, 101, -2):  # refused, no route, network unreachable, no such host
        return f"{exc} (is the host or port wrong, or the server down?)"
    if errno in (5, 32, 104):  # the server hung up during the handshake or the publish
        return f"{exc} (the server closed the connection: check the URL's application name and the stream key)"
    return str(exc)


def _watch_parent(parent: int) -> None:
    """Exit when the agent is gone (killed without closing our stdin's other end)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def push(target: PushTarget, codecs: Codecs, packets: Callable[[], Encoded | None], say: _Say) -> None:
    """Open the target, say ``connected``, then mux every packet until the pipe ends."""
    sender: SrtSender | None = None
    if target.scheme == "srt":
        sender = open_sender(target.srt())  # the SRT handshake; SrtError saying why not
        container = av.open(sender, "w", format=target.format, buffer_size=16 * MESSAGE)
    else:
        container = av.open(target.url, "w", format=target.format, options={"flvflags": "no_duration_filesize"})
    try:
        video, audio = add_streams(container, codecs)
        try:
            container.start_encoding()  # RTMP: connect, handshake, publish
        except av.error.FFmpegError as exc:
            raise PublishError(publish_failure(exc)) from exc
        say("ready")
        say("connected")
        started = False
        while (packet := packets()) is not None:
            if packet.kind == "video":
                started = started or packet.keyframe
            if not started or (packet.kind == "audio" and audio is None):
                continue  # a viewer's player starts at a keyframe; sound before it would come first
            stream = video if packet.kind == "video" else audio
            assert stream is not None
            container.mux(packet.packet(stream, codecs.time_base(packet.kind)))
    except av.error.FFmpegError as exc:
        if sender is not None and sender.failure is not None:
            raise sender.failure from exc
        raise
    finally:
        _close(container, sender)


def _close(container: Any, sender: SrtSender | None) -> None:
    """Write the trailer and close; a failed SRT write is reported as itself, not as PyAV's callback error."""
    try:
        container.close()
    except av.error.FFmpegError as exc:
        if sender is not None and sender.failure is not None:
            raise sender.failure from exc
        raise
    finally:
        if sender is not None:
            sender.close()


def main() -> int:
    """Read the header and the packets from stdin and push them; exit 1 (saying why) on failure."""
    threading.Thread(target=_watch_parent, args=(os.getppid(),), name="pusher.parent", daemon=True).start()
    stdin = sys.stdin.buffer
    say = _Say(None)
    try:
        header: dict[str, Any] = json.loads(stdin.readline(64 * 1024))
        target = parse_target(header["url"])
        say.target = target
        codecs = Codecs.from_dict(header["codecs"])
    except (ValueError, KeyError, TypeError, TargetError) as exc:
        say("error", f"bad header from the agent: {type(exc).__name__}")
        return 2
    logging.getLogger("libav").addHandler(_LogToParent(say))
    logging.getLogger("libav").propagate = False
    av.logging.set_level(av.logging.WARNING)
    try:
        push(target, codecs, lambda: read_packet(stdin), say)
    except (av.error.FFmpegError, OSError, ValueError, StreamingError) as exc:
        detail = str(exc)
        if say.last_log and say.last_log not in detail:
            detail = f"{detail} ({say.last_log})"
        say("error", detail)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
