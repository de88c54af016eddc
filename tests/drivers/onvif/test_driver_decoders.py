"""The onvif driver's readers of camera answers: hostile input is refused or ignored, never crashes (fuzzed)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import ArgumentError, GarbageReceived
from drivers.onvif.commands import identity
from drivers.onvif.discovery import _matches
from drivers.onvif.media import MediaProfile, choose, media_uri, read_profiles, with_credentials
from drivers.onvif.ptz import move_velocity, preset_for, read_presets, read_status

# Whatever zeep's serialize_object can hand over: nested dicts, lists, strings, numbers, None.
ANSWERS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=30), kids, max_size=6),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(ANSWERS)
def test_any_answer_is_read_or_refused_as_garbage(answer: Any) -> None:
    try:
        profiles = read_profiles(answer, "camera")
    except GarbageReceived:
        pass
    else:
        assert profiles and all(isinstance(p.token, str) and 0 < len(p.token) <= 64 for p in profiles)
    state = read_status(answer)
    assert isinstance(state["moving"], bool)
    assert all(isinstance(state[k], int) and abs(state[k]) <= 1500 for k in ("pan", "tilt", "zoom") if k in state)
    assert all(0 < len(p.token) <= 64 for p in read_presets(answer))
    assert all(isinstance(v, str) and "\n" not in v and len(v) <= 64 for v in identity(answer).values())
    with pytest.raises(GarbageReceived):
        media_uri(
            answer if not isinstance(answer, dict) else {**answer, "Uri": "file:///etc/passwd"}, "X", ("rtsp",), "c"
        )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.text(max_size=2000).map(str.encode))
def test_any_datagram_is_a_camera_or_nothing(data: bytes) -> None:
    assert _matches(data, "127.0.0.1", "urn:uuid:ours") == []


def test_status_with_nan_or_out_of_space_numbers_is_not_reported() -> None:
    answer = {
        "Position": {"PanTilt": {"x": float("nan"), "y": 1e300}, "Zoom": {"x": 0.5}},
        "MoveStatus": {"Zoom": "MOVING"},
    }
    assert read_status(answer) == {"zoom": 500, "moving": True}


def test_main_is_the_largest_picture_and_sub_the_smallest() -> None:
    profiles = (
        MediaProfile("p2", width=640, height=360),
        MediaProfile("p1", width=1920, height=1080),
        MediaProfile("p3"),
    )
    assert (choose(profiles, "main").token, choose(profiles, "").token, choose(profiles, "sub").token) == (
        "p1",
        "p1",
        "p3",
    )
    assert choose(profiles, "p2").token == "p2"
    with pytest.raises(ArgumentError, match="no media profile 'p9'; the camera has p2, p1, p3"):
        choose(profiles, "p9")


def test_credentials_go_into_a_stream_uri_that_has_none_on_the_cameras_own_host() -> None:
    expected = "rtsp://ad%20min:p%3Aw%40@10.0.0.5:554/ch1"
    assert with_credentials("rtsp://10.0.0.5:554/ch1", "ad min", "p:w@", "10.0.0.5") == expected
    assert with_credentials("rtsp://u:p@10.0.0.5/ch1", "admin", "x", "10.0.0.5") == "rtsp://u:p@10.0.0.5/ch1"
    # A camera that names another host gets no password sent there (RTSP may carry it in clear text).
    assert with_credentials("rtsp://203.0.113.9/ch1", "admin", "x", "10.0.0.5") == "rtsp://203.0.113.9/ch1"


def test_a_preset_is_found_by_its_name_before_its_token() -> None:
    presets = read_presets([{"token": "1", "Name": "2"}, {"token": "2", "Name": "door"}, {"token": None}, "junk"])
    assert [p.token for p in presets] == ["1", "2"]
    assert preset_for(presets, 2).token == "1"  # type: ignore[union-attr]  # named "2", as preset_set saves it
    assert preset_for(presets, 1) is None  # token "1" is preset 2's: never taken for preset 1
    assert preset_for(read_presets([{"token": "5", "Name": "讲台"}]), 5).token == "5"  # type: ignore[union-attr]


def test_directions_are_onvif_signs() -> None:
    assert move_velocity("up", 24, 12) == {"PanTilt": {"x": 0.0, "y": 0.5}}
    assert move_velocity("downleft", 6, 24) == {"PanTilt": {"x": -0.25, "y": -1.0}}
