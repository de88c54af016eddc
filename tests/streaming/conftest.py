"""Real media servers for the streaming tests: a GStreamer RTSP camera, an Xvfb screen, ffmpeg as an SRT platform."""

from __future__ import annotations

import functools
import os
import selectors
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from streaming.srt import LIBRARIES

if TYPE_CHECKING:
    from streaming.rtc import Peer

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's: it has gi and GstRtspServer, the venv does not
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
PASSPHRASE = "classroom-passphrase-42"  # the SRT listener's
GST_CHECK = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_line(process: subprocess.Popen[str], deadline: float) -> str:
    """The next stdout line of `process`, or "" at EOF or the deadline."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(max(0.0, deadline - time.monotonic())):
            return ""
    return process.stdout.readline()


class RtspTestServer:
    """GStreamer's RTSP server in its own process, serving H.264 + AAC test signals on loopback."""

    def __init__(self, port: int, size: tuple[int, int] = (320, 240), fps: int = 20, path: str = "/cam") -> None:
        self.port, self.size, self.fps, self.path = port, size, fps, path
        self.url = f"rtsp://127.0.0.1:{port}{path}"
        self._process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Start and wait for "ready"; retries while the port is still held by a killed predecessor."""
        deadline = time.monotonic() + timeout
        command = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--path", self.path]
        command += ["--width", str(self.size[0]), "--height", str(self.size[1]), "--fps", str(self.fps)]
        while True:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if read_line(process, deadline).strip() == "ready":
                self._process = process
                return
            process.kill()
            _, stderr = process.communicate(timeout=5)
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP test server did not start on port {self.port}: {stderr.strip()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """kill -9, like a camera losing power."""
        process, self._process = self._process, None
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=5)

    def restart(self) -> None:
        """Start again on the same port."""
        self.stop()
        self.start()


@pytest.fixture
def unused_port() -> int:
    """A loopback TCP port with nobody listening (an unreachable camera)."""
    return free_port()


@pytest.fixture(scope="session")
def gst_rtsp_available() -> None:
    """Skip (with the reason) when Debian's python3 lacks GStreamer's RTSP server bindings."""
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip(f"{SYSTEM_PYTHON} is missing: the RTSP test server needs Debian's python3-gi")
    check = subprocess.run([SYSTEM_PYTHON, "-c", GST_CHECK], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        reason = check.stderr.strip().splitlines()[-1:] or ["?"]
        pytest.skip(
            f"{SYSTEM_PYTHON} cannot import GstRtspServer ({reason[0]}): apt-get install python3-gi "
            "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly gstreamer1.0-libav"
        )


@pytest.fixture
def rtsp_server(gst_rtsp_available: None) -> Iterator[RtspTestServer]:
    """A running RTSP camera (320x240, 20 fps) on a free loopback port, killed after the test."""
    server = RtspTestServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class XDisplay:
    """A running Xvfb: its display name and a way to paint its root window."""

    def __init__(self, name: str) -> None:
        self.name = name

    def paint(self, colour: str) -> None:
        """Fill the root window with one colour (what a screen grab should then see)."""
        subprocess.run(["xsetroot", "-display", self.name, "-solid", colour], check=True, timeout=10)


@pytest.fixture
def xvfb() -> Iterator[XDisplay]:
    """A real X server (Xvfb, 1280x720x24) on a display number it picks itself (-displayfd)."""
    if shutil.which("Xvfb") is None or shutil.which("xsetroot") is None:
        pytest.skip("Xvfb / xsetroot missing: apt-get install xvfb x11-xserver-utils")
    read_end, write_end = os.pipe()
    # -noreset: otherwise the server resets (and forgets the root colour) when xsetroot disconnects
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x720x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_end,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as numbers, selectors.DefaultSelector() as selector:
            selector.register(numbers, selectors.EVENT_READ)
            assert selector.select(15), "Xvfb did not report its display within 15 s"
            display = f":{numbers.readline().strip()}"
        yield XDisplay(display)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    """Peers a test makes are closed after it, whatever happened."""
    made: list[Peer] = []
    yield made
    for peer in made:
        await peer.close()


@functools.cache
def srt_missing() -> str:
    """Why the SRT tests cannot run here ("" when they can)."""
    if not any(Path(d, name).exists() for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib") for name in LIBRARIES):
        return "libsrt not installed (apt-get install libsrt1.5-gnutls)"
    if shutil.which("ffmpeg") is None:
        return "ffmpeg not installed (apt-get install ffmpeg): the test's SRT listener"
    protocols = subprocess.run(["ffmpeg", "-hide_banner", "-protocols"], capture_output=True, text=True, timeout=30)
    return "" if "\n  srt\n" in protocols.stdout else "this ffmpeg has no SRT (Debian's has libsrt)"


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listener(port: int, received: Path, log: Path, seconds: int = 4) -> subprocess.Popen[bytes]:
    """ffmpeg as the platform: an SRT listener with the passphrase, keeping `seconds` of what arrives.

    At debug level it logs the streamid of the caller it accepts (``accept streamid [...]``).
    """
    with log.open("wb") as stderr:
        return subprocess.Popen(
            ["ffmpeg", "-loglevel", "debug", "-y", "-i", f"srt://127.0.0.1:{port}?mode=listener&passphrase={PASSPHRASE}",
             "-t", str(seconds), "-c", "copy", str(received)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
