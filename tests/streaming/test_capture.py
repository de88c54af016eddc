"""Local capture: the screen against a real Xvfb; USB camera and microphone only where no hardware is needed.

A USB camera and a microphone cannot be exercised here without the devices, and are not
faked: only their behaviour when the device is missing (what a technician sees when a cable is
unplugged) is tested.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from conftest import wait_until

from drivers.backoff import Backoff
from streaming.capture import MicrophoneSource, ScreenSource, UsbCameraSource
from streaming.source import Frame

if TYPE_CHECKING:  # fixtures come through pytest; only their types are imported
    from conftest import XDisplay


def looks(frame: Frame, bgr: tuple[int, int, int]) -> bool:
    """Whether the picture is (all but the mouse pointer) of one colour."""
    mean = np.mean(frame.image, axis=(0, 1))
    return bool(np.all(np.abs(mean - np.array(bgr)) < 3))


def wait_for_colour(screen: ScreenSource, bgr: tuple[int, int, int], timeout: float) -> Frame | None:
    """The first captured frame whose mean colour is `bgr`, or None by the deadline."""
    deadline = time.monotonic() + timeout
    index = 0
    while (left := deadline - time.monotonic()) > 0:
        frame = screen.wait_newer(index, left)
        if frame is not None and frame.index > index:
            if looks(frame, bgr):
                return frame
            index = frame.index
    return None


def test_screen_captures_what_the_display_shows(xvfb: XDisplay) -> None:
    xvfb.paint("red")
    screen = ScreenSource("courseware", xvfb.name, fps=10, backoff=Backoff(base=0.1, cap=0.5))
    screen.start()
    try:
        red = wait_for_colour(screen, (0, 0, 255), 15)
        assert red is not None, screen.health()
        assert red.size == (1280, 720)

        xvfb.paint("blue")
        assert wait_for_colour(screen, (255, 0, 0), 10) is not None, "the screen source stopped following the display"
        health = screen.health()
        assert health.connected and health.error == ""
        assert health.fps >= 5
    finally:
        screen.stop()


def test_screen_grabs_the_requested_region(xvfb: XDisplay) -> None:
    xvfb.paint("green")
    screen = ScreenSource("courseware", xvfb.name, size=(640, 360), fps=10)
    screen.start()
    try:
        frame = screen.wait_newer(0, 15)
        assert frame is not None, screen.health()
        assert frame.size == (640, 360)
    finally:
        screen.stop()


def test_screen_without_a_display_reports_it_and_retries() -> None:
    number = next(n for n in range(150, 250) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    screen = ScreenSource("courseware", f":{number}", backoff=Backoff(base=0.05, cap=0.2))
    screen.start()
    try:
        assert wait_until(lambda: screen.reconnects >= 2, 10), screen.health()
        health = screen.health()
        assert not health.connected
        assert f"screen :{number}: cannot open the X display" in health.error
        assert screen.latest() is None
    finally:
        screen.stop()


def test_missing_usb_camera_reports_it_and_keeps_retrying() -> None:
    camera = UsbCameraSource("teacher", "/dev/video99", (1280, 720), 30, backoff=Backoff(base=0.05, cap=0.2))
    camera.start()
    try:
        assert wait_until(lambda: camera.reconnects >= 3, 10), camera.health()
        health = camera.health()
        assert not health.connected
        assert "USB camera /dev/video99: cannot open" in health.error
        assert camera.latest() is None
    finally:
        started = time.monotonic()
        camera.stop(timeout=10)
        assert time.monotonic() - started < 2.0


def test_missing_microphone_reports_it_and_keeps_retrying() -> None:
    microphone = MicrophoneSource("lectern", "hw:99", backoff=Backoff(base=0.05, cap=0.2))
    microphone.start()
    try:
        assert wait_until(lambda: microphone.reconnects >= 2, 10), microphone.error
        assert not microphone.connected
        assert "microphone alsa:hw:99: cannot open" in microphone.error
        assert microphone.frames() == []
    finally:
        microphone.stop()
