"""Composition: each source's pixels land where the layout says; a missing source says so."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.compose import Compositor, Layout, LayoutError, View
from streaming.source import Frame, Image
from streaming.synthetic import SyntheticSource

SIZE = (640, 360)
RED, GREEN, BLUE, WHITE = (0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255)


def solid(color: tuple[int, int, int], size: tuple[int, int] = (1280, 720), now: float = 100.0) -> Frame:
    image = np.empty((size[1], size[0], 3), np.uint8)
    image[:] = color
    return Frame(image, now, 1)


def centre(image: Image, view: View) -> tuple[int, int, int]:
    b, g, r = image[view.y + view.height // 2, view.x + view.width // 2]
    return int(b), int(g), int(r)


def inner(image: Image, view: View, margin: int = 2) -> Image:
    return image[view.y + margin : view.y + view.height - margin, view.x + margin : view.x + view.width - margin]


def compose(layout: Layout, frames: dict[str, Frame | None]) -> tuple[Compositor, Image]:
    compositor = Compositor(layout, {})
    return compositor, compositor.compose(frames, now=100.0)


@pytest.mark.parametrize("corner", ["top-left", "top-right", "bottom-left", "bottom-right"])
def test_pip_puts_the_inset_in_the_chosen_corner(corner: str) -> None:
    layout = Layout("pip", ("main", "inset"), size=SIZE, corner=corner, inset_scale=0.25)
    _, out = compose(layout, {"main": solid(RED), "inset": solid(GREEN)})
    main, inset = layout.views()
    assert (inset.width, inset.height) == (160, 90)
    assert (inset.x < SIZE[0] / 2) == corner.endswith("left")
    assert (inset.y < SIZE[1] / 2) == corner.startswith("top")
    assert np.all(inner(out, inset) == GREEN)
    # everything outside the inset is the main picture
    mask = np.ones(out.shape[:2], bool)
    mask[inset.y : inset.y + inset.height, inset.x : inset.x + inset.width] = False
    assert np.all(out[mask] == RED)


def test_pip_with_two_insets_puts_them_side_by_side_in_the_corner() -> None:
    layout = Layout("pip", ("main", "a", "b"), size=SIZE, corner="bottom-left")
    _, out = compose(layout, {"main": solid(RED), "a": solid(GREEN), "b": solid(BLUE)})
    _, first, second = layout.views()
    assert np.all(inner(out, first) == GREEN) and np.all(inner(out, second) == BLUE)
    assert first.x < second.x and first.y == second.y and first.x + first.width < second.x


def test_single_fills_the_picture_from_a_larger_source() -> None:
    layout = Layout("single", ("cam",), size=SIZE)
    _, out = compose(layout, {"cam": solid(BLUE, size=(1920, 1080))})
    assert np.all(out == BLUE)


def test_side_by_side_letterboxes_two_halves() -> None:
    layout = Layout("side_by_side", ("left", "right"), size=SIZE)
    _, out = compose(layout, {"left": solid(RED), "right": solid(GREEN)})
    left, right = layout.views()
    assert np.all(inner(out, left) == RED) and np.all(inner(out, right) == GREEN)
    assert left.x == 0 and right.x == SIZE[0] // 2
    assert np.all(out[: left.y] == 0) and np.all(out[left.y + left.height :] == 0)  # black bars


def test_grid_fills_four_quadrants_in_reading_order() -> None:
    colors = {"a": RED, "b": GREEN, "c": BLUE, "d": WHITE}
    layout = Layout("grid", tuple(colors), size=SIZE)
    _, out = compose(layout, {name: solid(color) for name, color in colors.items()})
    w, h = SIZE[0] // 2, SIZE[1] // 2
    assert out[h // 2, w // 2].tolist() == list(RED)
    assert out[h // 2, w + w // 2].tolist() == list(GREEN)
    assert out[h + h // 2, w // 2].tolist() == list(BLUE)
    assert out[h + h // 2, w + w // 2].tolist() == list(WHITE)


def test_grid_with_three_sources_leaves_the_fourth_cell_black() -> None:
    layout = Layout("grid", ("a", "b", "c"), size=SIZE)
    _, out = compose(layout, {"a": solid(RED), "b": solid(GREEN), "c": solid(BLUE)})
    assert np.all(out[SIZE[1] // 2 :, SIZE[0] // 2 :] == 0)


def test_courseware_teacher_shows_courseware_full_and_teacher_inset() -> None:
    layout = Layout("courseware_teacher", ("courseware", "teacher"), size=SIZE, corner="top-right")
    _, out = compose(layout, {"courseware": solid(WHITE), "teacher": solid(BLUE)})
    full, inset = layout.views()
    assert centre(out, full) == WHITE
    assert np.all(inner(out, inset) == BLUE)
    assert inset.x + inset.width > SIZE[0] * 0.9 and inset.y < SIZE[1] * 0.1


def test_missing_and_stale_sources_show_a_named_no_signal_tile() -> None:
    layout = Layout("side_by_side", ("left", "right"), size=SIZE)
    compositor = Compositor(layout, {}, stale_s=3.0)
    out = compositor.compose({"left": solid(RED, now=90.0), "right": None}, now=100.0)
    assert list(compositor.missing) == ["left", "right"]
    for view in layout.views():
        tile = inner(out, view)
        assert np.median(tile) == 48  # grey, not the stale red
        assert (tile > 150).any()  # with its name and "no signal" written on it
        assert not np.all(tile == RED)
    out = compositor.compose({"left": solid(RED, now=99.0), "right": None}, now=100.0)
    assert list(compositor.missing) == ["right"]
    assert np.all(inner(out, layout.views()[0]) == RED)


def test_compose_fills_the_same_preallocated_picture_every_time() -> None:
    layout = Layout("pip", ("main", "inset"), size=SIZE)
    compositor = Compositor(layout, {})
    first = compositor.compose({"main": solid(RED), "inset": solid(GREEN)}, now=100.0)
    second = compositor.compose({"main": solid(BLUE), "inset": solid(GREEN)}, now=100.0)
    assert first is second is compositor.output
    assert centre(second, layout.views()[0]) == BLUE


def test_render_takes_the_newest_frame_of_running_sources() -> None:
    sources = [SyntheticSource("main", (320, 180), 30, color=RED), SyntheticSource("inset", (320, 180), 30)]
    layout = Layout("pip", ("main", "inset"), size=SIZE)
    compositor = Compositor(layout, sources)
    for source in sources:
        source.start()
    try:
        for source in sources:
            assert source.wait_newer(0, 5.0) is not None
        out = compositor.render()
    finally:
        for source in sources:
            source.stop()
    assert compositor.missing == ()
    assert centre(out, layout.views()[0]) == RED
    assert not np.all(inner(out, layout.views()[1]) == RED)  # the moving pattern


def test_synthetic_pattern_moves_and_counts() -> None:
    source = SyntheticSource("cam", (320, 180), 30, clock=lambda: 0.0)
    first, later = source.draw(0), source.draw(10)
    assert first.shape == (180, 320, 3)
    assert not np.array_equal(first, later)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "mosaic", "sources": ("a",)}, "expected one of"),
        ({"name": "pip", "sources": ("a",)}, "got 1 sources, expected 2 to 3"),
        ({"name": "grid", "sources": ("a", "b", "c", "d", "e")}, "expected 1 to 4"),
        ({"name": "pip", "sources": ("a", "a")}, "appears twice"),
        ({"name": "pip", "sources": ("a", "b"), "corner": "middle"}, "corner"),
        ({"name": "pip", "sources": ("a", "b"), "inset_scale": 0.9}, "inset_scale"),
        ({"name": "single", "sources": ("a",), "size": (641, 360)}, "even"),
    ],
)
def test_bad_layouts_are_refused_with_the_reason(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LayoutError, match=message):
        Layout(**kwargs)  # type: ignore[arg-type]


def test_layout_round_trips_through_a_dict() -> None:
    layout = Layout("pip", ("teacher", "students"), size=(1280, 720), corner="top-left", inset_scale=0.3)
    assert Layout.from_dict(layout.to_dict()) == layout
    with pytest.raises(LayoutError, match="unknown keys"):
        Layout.from_dict({**layout.to_dict(), "colour": "red"})
