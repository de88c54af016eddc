"""People detection with OpenCV's HOG people detector (the SVM ships inside OpenCV: nothing is fetched).

HOG looks for upright people about twice as tall as wide, at least 128 pixels tall in the
picture it is given.  A whole 640x360 picture costs tens of milliseconds, so the tracker runs
it rarely: on the region around a target it already follows (scaled so the person is the
detector's size), or over the whole picture now and then while it searches.
"""

from __future__ import annotations

import cv2
import numpy as np

from streaming.source import Image
from streaming.tracking.geometry import Box

WINDOW_H = 128  # HOG's window; a person fills about 100 pixels of it
PERSON_IN_WINDOW = 100.0
MIN_WEIGHT = 0.3  # the SVM's margin below which a detection is too unsure to count


class PeopleDetector:
    """Finds upright people in a picture or a region of it; boxes in the picture's pixels."""

    def __init__(self, min_weight: float = MIN_WEIGHT) -> None:
        """Build the detector with OpenCV's default people SVM."""
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
        self.min_weight = min_weight

    def detect(self, image: Image, *, scale_step: float = 1.15, upscale: float = 1.0) -> list[tuple[Box, float]]:
        """People in the whole picture (upscaled first by `upscale` to find smaller people), with their weights."""
        source = image
        if upscale != 1.0:
            size = (int(image.shape[1] * upscale), int(image.shape[0] * upscale))
            source = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), np.uint8)
        if source.shape[0] < WINDOW_H or source.shape[1] < WINDOW_H // 2:
            return []
        rects, weights = self._hog.detectMultiScale(source, winStride=(8, 8), padding=(8, 8), scale=scale_step)
        out = []
        for (x, y, w, h), weight in zip(rects, np.ravel(weights), strict=True):
            if float(weight) >= self.min_weight:
                box = _person_part(Box(float(x), float(y), float(w), float(h)))
                out.append((box.scaled(1 / upscale, 1 / upscale), float(weight)))
        return out

    def near(self, image: Image, around: Box) -> list[tuple[Box, float]]:
        """People in the region around `around` (pixels), the region scaled so a person of its height fits HOG."""
        if around.h < 8 or around.w < 4:
            return []
        # Room above and below: what moved may be only part of the person (legs, an arm).
        region = Box(around.cx - around.h * 0.9, around.y - around.h * 0.6, around.h * 1.8, around.h * 2.1)
        region = region.clipped(image.shape[1], image.shape[0])
        if region.w < 8 or region.h < 8:
            return []
        factor = PERSON_IN_WINDOW / around.h
        x0, y0 = int(region.x), int(region.y)
        part = image[y0 : int(region.bottom), x0 : int(region.right)]
        found = self.detect(part, scale_step=1.1, upscale=factor)
        return [(Box(b.x + x0, b.y + y0, b.w, b.h), w) for b, w in found]


def _person_part(window: Box) -> Box:
    """The person inside a HOG window: the window has a margin of about 1/8 of its height around them."""
    return Box(window.x + window.w * 0.22, window.y + window.h * 0.1, window.w * 0.56, window.h * 0.8)
