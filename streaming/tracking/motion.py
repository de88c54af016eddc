"""What moved in a picture from a camera that may itself be moving.

A PTZ camera that follows someone shifts and scales the whole picture.  `EgoMotion` tracks
corners of the room from one frame to the next (pyramidal Lucas-Kanade optical flow), fits the
camera's own motion as one similarity transform (shift, scale, a little rotation; RANSAC keeps
the people who move on their own out of the fit), warps the previous frame by it and subtracts:
what is left is what moved by itself.  Blobs of that difference are the candidates a tracker
follows.  A change of light over the whole picture (a tube flickering, a cloud) is taken out
first by matching the two frames' mean brightness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from streaming.tracking.geometry import Box

Grey = npt.NDArray[np.uint8]
Matrix = npt.NDArray[np.float64]
IDENTITY: Matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
SQUARE = np.ones((3, 3), np.uint8)
MIN_POINTS = 12  # fewer tracked corners than this: the fit is not trusted (a blank wall, a dark room)


@dataclass(frozen=True, slots=True)
class Motion:
    """One frame's result: the camera's motion since the last frame and the blobs that moved by themselves."""

    transform: Matrix  # 2x3, previous frame's pixels -> this frame's pixels
    trusted: bool  # enough corners agreed on the camera's motion
    blobs: tuple[Box, ...] = ()  # pixels of the analysis picture
    mask: Grey | None = field(default=None, repr=False)

    @property
    def scale(self) -> float:
        """The picture's magnification since the last frame (>1: zooming in)."""
        return float(np.hypot(self.transform[0, 0], self.transform[1, 0]))

    @property
    def shift(self) -> tuple[float, float]:
        """The picture's shift in pixels since the last frame."""
        return float(self.transform[0, 2]), float(self.transform[1, 2])

    def moved(self, box: Box) -> Box:
        """Where a box of the previous frame is in this one, carried by the camera's motion."""
        return carry(self.transform, box)


def carry(transform: Matrix, box: Box) -> Box:
    """A box moved by a similarity transform: its centre mapped, its size scaled."""
    m = transform
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    cx = float(m[0, 0] * box.cx + m[0, 1] * box.cy + m[0, 2])
    cy = float(m[1, 0] * box.cx + m[1, 1] * box.cy + m[1, 2])
    return Box(cx - scale * box.w / 2, cy - scale * box.h / 2, scale * box.w, scale * box.h)


def u8(array: object) -> Grey:
    """An OpenCV result as the uint8 array it is (the stubs promise only some array)."""
    return np.asarray(array, np.uint8)


class EgoMotion:
    """Camera-motion compensated frame differencing on small grey pictures (see the module's docstring)."""

    def __init__(self, *, threshold: int = 18, min_area: int = 24, corners: int = 120, merge_px: int = 5) -> None:
        """`threshold` is the grey-level difference that counts as motion; `min_area` the smallest blob (pixels)."""
        self.threshold = threshold
        self.min_area = min_area
        self.corners = corners
        self._merge = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * merge_px + 1, 2 * merge_px + 1))
        self._previous: Grey | None = None
        self._points: npt.NDArray[np.float32] | None = None

    def reset(self) -> None:
        """Forget the previous frame (a cut, a jump to a preset: nothing to compare with)."""
        self._previous = None
        self._points = None

    def feed(self, grey: Grey, keep_out: Box | None = None) -> Motion:
        """One frame in; the camera's motion and the self-moving blobs out.

        `keep_out` (pixels) is where the target is: no corner is taken there for the camera's fit.
        """
        previous, points = self._previous, self._points
        self._previous = grey
        self._points = self._corners(grey, keep_out)
        if previous is None or previous.shape != grey.shape:
            return Motion(IDENTITY.copy(), False)
        transform, trusted = self._fit(previous, grey, points)
        mask = self._difference(previous, grey, transform)
        return Motion(transform, trusted, self._blobs(mask), mask)

    def _corners(self, grey: Grey, keep_out: Box | None) -> npt.NDArray[np.float32] | None:
        mask = None
        if keep_out is not None:
            mask = np.full(grey.shape, 255, np.uint8)
            x0, y0 = max(0, int(keep_out.x)), max(0, int(keep_out.y))
            mask[y0 : max(y0, int(keep_out.bottom)), x0 : max(x0, int(keep_out.right))] = 0
        found = cv2.goodFeaturesToTrack(grey, self.corners, 0.01, 7, mask=mask, blockSize=5)
        return None if found is None else found.astype(np.float32)

    def _fit(self, previous: Grey, grey: Grey, points: npt.NDArray[np.float32] | None) -> tuple[Matrix, bool]:
        if points is None or len(points) < MIN_POINTS:
            return IDENTITY.copy(), False
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, grey, points, None, winSize=(15, 15), maxLevel=2)  # type: ignore[call-overload]
        good = status.reshape(-1) == 1
        if int(good.sum()) < MIN_POINTS:
            return IDENTITY.copy(), False
        transform, inliers = cv2.estimateAffinePartial2D(
            points[good], moved[good], method=cv2.RANSAC, ransacReprojThreshold=1.0
        )
        if transform is None or inliers is None or int(inliers.sum()) < MIN_POINTS:
            return IDENTITY.copy(), False
        return transform.astype(np.float64), True

    def _difference(self, previous: Grey, grey: Grey, transform: Matrix) -> Grey:
        height, width = grey.shape
        still = np.allclose(transform, IDENTITY, atol=0.02) and abs(transform[0, 2]) < 0.25
        if still:
            warped, valid = previous, None
        else:
            warped = u8(cv2.warpAffine(previous, transform, (width, height), flags=cv2.INTER_LINEAR))
            blank = np.full_like(previous, 255)
            valid = u8(cv2.warpAffine(blank, transform, (width, height), flags=cv2.INTER_NEAREST))
            valid = u8(cv2.erode(valid, SQUARE, iterations=2))
        before, after = float(warped.mean()), float(grey.mean())
        if before > 1.0 and abs(after / before - 1.0) > 0.005:
            warped = u8(cv2.convertScaleAbs(warped, alpha=after / before))
        diff = cv2.absdiff(grey, warped)
        _, mask = cv2.threshold(diff, self.threshold, 255, cv2.THRESH_BINARY)
        if valid is not None:
            mask = cv2.bitwise_and(mask, valid)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, SQUARE)
        return u8(cv2.dilate(mask, self._merge))

    def _blobs(self, mask: Grey) -> tuple[Box, ...]:
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        out = []
        for i in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area >= self.min_area:
                out.append(Box(float(x), float(y), float(w), float(h)))
        return tuple(out)
