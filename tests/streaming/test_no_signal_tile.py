"""The composed picture's no-signal tile says 无信号 in a CJK font: a Chinese classroom's recording and stream.

The tile is found in a real composition by template matching against 无信号 drawn in the same Debian
font at every size in a range (so the test does not know the tile's font size), and it is not the
English OpenCV could draw.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from streaming.compose import NO_SIGNAL, Compositor, Layout, cjk_font


def best_match(picture: np.ndarray, text: str) -> float:
    """The best normalised correlation of `text`, drawn light on grey at 10..80 px, anywhere in `picture`."""
    font = cjk_font()
    assert font is not None
    grey = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
    best = -1.0
    for size in range(10, 81, 2):
        face = ImageFont.truetype(str(font), size)
        left, top, right, bottom = face.getbbox(text)
        stamp = Image.new("L", (right - left + 4, bottom - top + 4), 48)
        ImageDraw.Draw(stamp).text((2 - left, 2 - top), text, font=face, fill=200)
        template = np.asarray(stamp)
        if template.shape[0] >= grey.shape[0] or template.shape[1] >= grey.shape[1]:
            break
        best = max(best, float(cv2.matchTemplate(grey, template, cv2.TM_CCOEFF_NORMED).max()))
    return best


def test_a_source_without_a_picture_shows_wu_xin_hao_in_chinese() -> None:
    if cjk_font() is None:
        pytest.fail("no CJK font: scripts/system-deps installs fonts-noto-cjk")
    compositor = Compositor(Layout("side_by_side", ("teacher", "students"), size=(1280, 360)), {})
    picture = compositor.compose({})
    assert compositor.missing == ("teacher", "students")
    assert best_match(picture, NO_SIGNAL) > 0.8
    assert best_match(picture, "无画面") < 0.6  # other Chinese words do not match: the test can tell
