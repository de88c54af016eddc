"""A JPEG of what the simulated camera 'sees'.

A scene that shifts with pan and tilt, the position written on it. OpenCV is imported here
only, and the encoding runs off the event loop.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from drivers.sim.onvif.ptz import Position


def render(width: int, height: int, position: Position, title: str, when: datetime) -> bytes:
    """The JPEG bytes (blocking: call through `render_async`)."""
    import cv2  # the media stack loads only when a snapshot is asked for
    import numpy as np

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    # The "room" is a pattern in world coordinates: pan and tilt slide it, zoom scales it.
    scale = 1.0 + 3.0 * position.zoom
    wx = (xs - width / 2) / scale + position.pan * width
    wy = (ys - height / 2) / scale - position.tilt * height
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = (128 + 100 * np.sin(wx / 60.0)).astype(np.uint8)
    image[..., 1] = (128 + 100 * np.cos(wy / 45.0)).astype(np.uint8)
    image[..., 2] = ((wx + wy) % 256).astype(np.uint8)
    size = max(0.5, height / 540)
    lines = (
        title,
        f"pan {position.pan:+.3f}  tilt {position.tilt:+.3f}  zoom {position.zoom:.3f}",
        when.strftime("%Y-%m-%d %H:%M:%S UTC (camera clock)"),
    )
    for row, line in enumerate(lines):
        origin = (int(20 * size), int((50 + 45 * row) * size))
        cv2.putText(image, line, origin, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), int(6 * size), cv2.LINE_AA)
        cv2.putText(image, line, origin, cv2.FONT_HERSHEY_SIMPLEX, size, (255, 255, 255), int(2 * size), cv2.LINE_AA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(encoded.tobytes())


async def render_async(width: int, height: int, position: Position, title: str, when: datetime) -> bytes:
    """`render` in a worker thread."""
    return await asyncio.to_thread(render, width, height, position, title, when)
