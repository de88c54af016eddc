"""A machine-readable burn-in: frame counter and wall clock as big black/white blocks.

`burn` draws two rows of square cells at the picture's top-left: an 8-cell start marker, a
24-bit frame counter, the low 32 bits of the wall clock in milliseconds and a CRC-8 over both.
Cells are `height // 45` pixels (16 at 720p, 8 at 360p), so a picture scaled by the encoder
keeps a cell size that `read` recomputes from the height it sees; the cells are large and
two-valued, so they survive H.264 at ordinary bitrates.  `read` samples the centre of each cell
and returns None when the marker or the CRC does not match (no stamp, or a damaged picture).
Pure numpy: the encoder, the receiver and the benchmark all use it.
"""

from __future__ import annotations

import numpy as np

from streaming.source import Image

__all__ = ["COUNTER_BITS", "WALL_BITS", "age_ms", "burn", "cell_size", "fits", "read", "strip_size"]

COUNTER_BITS = 24
WALL_BITS = 32
_MARKER = (1, 0, 1, 1, 0, 0, 1, 0)
_CRC_BITS = 8
_CELLS = len(_MARKER) + COUNTER_BITS + WALL_BITS + _CRC_BITS  # 72
_ROWS = 2
_PER_ROW = _CELLS // _ROWS
_WHITE, _BLACK = 255, 0


def cell_size(height: int) -> int:
    """The side of one cell in pixels for a picture `height` pixels tall."""
    return max(4, height // 45)


def strip_size(height: int) -> tuple[int, int]:
    """(width, height) in pixels of the stamp on a picture `height` pixels tall."""
    cell = cell_size(height)
    return _PER_ROW * cell, _ROWS * cell


def fits(size: tuple[int, int]) -> bool:
    """True when a picture of `size` (width, height) is large enough to carry the stamp."""
    width, height = strip_size(size[1])
    return width <= size[0] and height <= size[1]


def _crc8(bits: list[int]) -> int:
    """CRC-8 (polynomial 0x07) over a bit list: a damaged stamp reads as None, not as a wrong number."""
    crc = 0
    for bit in bits:
        top = ((crc >> 7) & 1) ^ bit
        crc = ((crc << 1) & 0xFF) ^ (0x07 if top else 0)
    return crc


def _bits(value: int, width: int) -> list[int]:
    return [(value >> (width - 1 - i)) & 1 for i in range(width)]


def _value(bits: list[int]) -> int:
    out = 0
    for bit in bits:
        out = (out << 1) | bit
    return out


def burn(image: Image, index: int, wall_ms: int) -> None:
    """Draw the stamp for frame `index` at `wall_ms` (both taken modulo their bit widths) in place."""
    if image.ndim != 3 or not fits((image.shape[1], image.shape[0])):
        raise ValueError(f"stamp: picture {image.shape} is too small or not BGR (needs {strip_size(image.shape[0])})")
    payload = _bits(index % (1 << COUNTER_BITS), COUNTER_BITS) + _bits(wall_ms % (1 << WALL_BITS), WALL_BITS)
    cells = list(_MARKER) + payload + _bits(_crc8(payload), _CRC_BITS)
    cell = cell_size(image.shape[0])
    for n, bit in enumerate(cells):
        row, col = divmod(n, _PER_ROW)
        image[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] = _WHITE if bit else _BLACK


def read(image: Image) -> tuple[int, int] | None:
    """(frame counter, wall clock ms modulo 2**32) from a stamped picture, or None if there is no valid stamp."""
    if image.ndim not in (2, 3) or not fits((image.shape[1], image.shape[0])):
        return None
    cell = cell_size(image.shape[0])
    margin = cell // 4  # sample the middle of each cell: the edges blur under compression
    width, height = strip_size(image.shape[0])
    strip = np.asarray(image[:height, :width], dtype=np.float32)  # only the strip: a 720p picture is 30x larger
    grey = strip if strip.ndim == 2 else strip.mean(axis=2)
    region = grey.reshape(_ROWS, cell, _PER_ROW, cell)
    centres = region[:, margin : cell - margin, :, margin : cell - margin].mean(axis=(1, 3))
    cells = [int(v > 127) for v in centres.reshape(-1)]
    if tuple(cells[: len(_MARKER)]) != _MARKER:
        return None
    payload = cells[len(_MARKER) : len(_MARKER) + COUNTER_BITS + WALL_BITS]
    if _value(cells[-_CRC_BITS:]) != _crc8(payload):
        return None
    return _value(payload[:COUNTER_BITS]), _value(payload[COUNTER_BITS:])


def age_ms(stamped_wall_ms: int, now_ms: int) -> int:
    """Milliseconds from a stamped wall clock to `now_ms` (wall clock ms), across the 32-bit wrap."""
    return (now_ms - stamped_wall_ms) % (1 << WALL_BITS)
