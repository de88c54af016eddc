"""``[[tracking]]`` and the virtual cameras in the site config: read whole, every problem reported at once."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.site import load_config, parse_config
from agent.config.tracking import TrackingConfig
from agent.errors import ConfigError

SEATS = [{"box": [0.2, 0.3, 0.3, 0.45], "preset": 11}, {"box": [0.5, 0.3, 0.6, 0.45], "preset": 12}]


def site(tmp: Path, tracking: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "agent_id": "room-7",
        "site": "s",
        "room": "7",
        "data_dir": str(tmp / "var"),
        "devices": [
            {"id": "teacher_cam", "profile": "sony-visca", "address": "sim"},
            {"id": "student_cam", "profile": "pelco-d", "address": "sim"},
            {"id": "real_cam", "profile": "sony-visca", "address": "tcp://127.0.0.1:5678"},
            {"id": "panel", "profile": "samsung-mdc", "address": "sim"},
        ],
        "sources": {
            "teacher": "ptz:teacher_cam?scene=podium",
            "panorama": "scene:students",
            "closeup": "ptz:student_cam?scene=students",
        },
        "tracking": tracking,
        **extra,
    }


TEACHER = {
    "camera": "teacher_cam",
    "role": "teacher",
    "source": "teacher",
    "home_preset": 1,
    "zones": {"podium": [0.0, 0.3, 0.8, 1.0], "blackboard": [0.2, 0.3, 0.6, 1.0], "door": [[0.8, 0.3, 0.9, 1.0]]},
    "dead_zone": 0.12,
    "height": 0.55,
}
STUDENTS = {"camera": "student_cam", "role": "students", "source": "panorama", "home_preset": 3, "seats": SEATS}


def test_both_roles_are_read_with_their_zones_seats_and_defaults(tmp_path: Path) -> None:
    config = parse_config(site(tmp_path, [TEACHER, STUDENTS]))
    teacher, students = config.tracking
    assert teacher == TrackingConfig(
        camera="teacher_cam",
        role="teacher",
        source="teacher",
        home_preset=1,
        zones=(
            ("podium", (0.0, 0.3, 0.8, 1.0)),
            ("blackboard", (0.2, 0.3, 0.6, 1.0)),
            ("door", (0.8, 0.3, 0.9, 1.0)),
        ),
        dead_zone=0.12,
        height=0.55,
    )
    assert students.seats == (((0.2, 0.3, 0.3, 0.45), 11), ((0.5, 0.3, 0.6, 0.45), 12))
    assert students.enabled and students.fps == 10.0


def test_every_tracking_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = [
        {**TEACHER, "role": "janitor", "speed": 3},
        {"camera": "panel", "role": "teacher", "source": "nowhere", "home_preset": 300},
        {**TEACHER, "zones": {"podium": [0.5, 0.2, 0.1, 0.9], "window": [0, 0, 1, 1]}, "settle": 0.2},
        {**STUDENTS, "seats": []},
        {**STUDENTS, "camera": "student_cam", "seats": [{"box": [0, 0, 2, 1], "preset": "x"}]},
        "not a table",
        {"role": "teacher"},
    ]
    with pytest.raises(ConfigError) as caught:
        parse_config(site(tmp_path, bad))
    message = str(caught.value)
    for expected in (
        "tracking[0].role: got 'janitor', expected one of teacher | students",
        "tracking[0].speed: unknown key",
        "tracking[1].camera: got 'panel', expected the id of a camera",
        "tracking[1].source: got 'nowhere', expected a source declared in [sources]",
        "tracking[1].home_preset: got 300",
        "tracking[2].zones.podium: got [0.5, 0.2, 0.1, 0.9], expected [x0, y0, x1, y1]",
        "tracking[2].zones.window: unknown zone, expected podium, blackboard, door",
        "tracking[2].settle: got 0.2, expected less than dead_zone",
        "tracking[2].camera: 'teacher_cam' is tracked twice",
        "tracking[3].seats: missing",
        "tracking[4].seats[0].box: got [0, 0, 2, 1]",
        "tracking[4].seats[0].preset: got 'x'",
        "tracking[5]: got 'not a table'",
        "tracking[6].camera: missing",
        "tracking[6].home_preset: missing",
    ):
        assert expected in message, expected


def test_virtual_cameras_need_a_known_scene_and_a_simulated_camera(tmp_path: Path) -> None:
    data = site(tmp_path, [])
    data["sources"] = {
        "a": "ptz:real_cam?scene=podium",
        "b": "ptz:ghost?scene=podium",
        "c": "scene:mars",
        "d": "ptz:teacher_cam",
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    message = str(caught.value)
    assert "sources.a: got camera 'real_cam', expected a camera in [[devices]] with address = \"sim\"" in message
    assert "sources.b: got camera 'ghost'" in message
    assert "sources.c: got scene 'mars', expected a scene (podium, door, students" in message
    assert "sources.d: got 'ptz:teacher_cam', expected" in message


def test_any_camera_profile_that_turns_zooms_and_recalls_presets_may_follow_and_tracking_must_be_tables(
    tmp_path: Path,
) -> None:
    data = site(tmp_path, [{**TEACHER, "camera": "student_cam", "source": "closeup"}])
    data["devices"][1]["profile"] = "pelco-p"
    config = parse_config(data)  # pelco-p turns, zooms and recalls presets: accepted
    assert config.tracking[0].camera == "student_cam"
    data["tracking"] = "tracking"
    with pytest.raises(ConfigError, match=r"tracking: got str, expected \[\[tracking\]\] tables"):
        parse_config(data)


def test_the_tracking_example_loads_whole() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "examples" / "tracking.toml")
    teacher, students = config.tracking
    assert (teacher.role, students.role) == ("teacher", "students")
    assert len(students.seats) == 18 and config.recording is not None and config.recording.director is not None
    assert ("student standing", "student_closeup") in config.recording.director.rules


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(["camera", "role", "source", "home_preset", "zones", "seats", "fps", "gain", "settle", "x"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(KEYS, JUNK, max_size=6) | JUNK, max_size=3))
def test_any_junk_in_tracking_is_a_config_error_never_a_crash(tracking: Any) -> None:
    with contextlib.suppress(ConfigError):  # a problem named by its key: fine; anything else fails the test
        parse_config(site(Path("/nonexistent"), tracking))
