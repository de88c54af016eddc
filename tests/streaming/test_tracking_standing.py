"""Standing students in the rendered students' panorama: the student camera's presets and the director's cue."""

from __future__ import annotations

from streaming.director import Director, Rule
from streaming.tracking.follow import PtzCommand
from streaming.tracking.scenes import COLUMNS, ROWS, Stand, StudentsScene
from streaming.tracking.standing import Seats, StudentsLoop

HOME = 3
SEATS = [(r, c) for r in range(ROWS) for c in range(COLUMNS)]


def preset_of(seat: tuple[int, int]) -> int:
    return 10 + SEATS.index(seat)


def play(scene: StudentsScene, seconds: float = 60.0) -> tuple[list[tuple[float, PtzCommand]], list[str], list[bool]]:
    """Run the students' loop and a director over the scene: commands, what the director showed, the cue."""
    loop = StudentsLoop([Seats(scene.standing_box(s), preset_of(s)) for s in SEATS], HOME, settle_s=2.0)
    director = Director([Rule("student standing", "closeup"), Rule("always", "panorama")], hold_s=3.0)
    commands, shown, cue = [], [], []
    for i in range(int(seconds * 10)):
        now = i / 10
        commands += [(now, c) for c in loop.feed(scene.render(now), now)]
        director.set_cue("student standing", loop.cue)
        shown.append(director.choose({"closeup": 0.0, "panorama": 0.0}, now))
        cue.append(loop.cue)
    return commands, shown, cue


def cuts_to(shown: list[str], source: str) -> int:
    return sum(1 for a, b in zip(shown, shown[1:], strict=False) if a != b and b == source)


def test_each_student_who_stands_up_gets_their_seats_preset_then_the_close_up_and_the_camera_goes_home_after() -> None:
    scene = StudentsScene()  # (0, 1) stands 10-18 s, (1, 4) 30-37 s, (2, 2) 48-54 s
    commands, shown, cue = play(scene)
    recalls = [(round(t), dict(c.args)["n"]) for t, c in commands]
    aimed = [n for _, n in recalls if n != HOME]
    assert aimed == [preset_of((0, 1)), preset_of((1, 4)), preset_of((2, 2))]
    for stand, n in zip(scene.stands, aimed, strict=True):
        sent = next(t for t, p in recalls if p == n)
        assert stand.start <= sent <= stand.start + 3  # within a moment of standing up
    assert [n for _, n in recalls].count(HOME) >= 2  # back home after the first two sat down
    assert cuts_to(shown, "closeup") == 3
    assert not cue[int(scene.stands[0].start * 10) + 5]  # the camera is still travelling: no cut yet


def test_seated_students_fidgeting_and_an_empty_room_under_a_flickering_light_never_cut() -> None:
    for scene in (StudentsScene((), flicker=0.05), StudentsScene((), seated=False, flicker=0.05)):
        commands, shown, cue = play(scene)
        assert commands == []
        assert not any(cue)
        assert cuts_to(shown, "closeup") == 0  # false cuts per minute: 0


def test_a_student_standing_at_the_back_is_not_taken_for_the_one_in_front_of_them() -> None:
    scene = StudentsScene((Stand((2, 3), 5.0, 15.0),), duration=20.0)
    commands, _, _ = play(scene, 20.0)
    assert [dict(c.args)["n"] for _, c in commands][:1] == [preset_of((2, 3))]
