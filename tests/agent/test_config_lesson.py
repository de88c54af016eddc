"""The ``[lesson]`` section, the lesson commands' arguments, and an agent without lessons staying light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.config.lesson import CAMERA, COURSEWARE, VideoSettings
from agent.config.site import parse_config
from agent.errors import ConfigError
from agent.service import Agent
from contract.args import parse_args_list


def site(tmp: Path, **lesson: Any) -> dict[str, Any]:
    """A parsed site config with three synthetic sources and the given [lesson] (None: no section)."""
    data: dict[str, Any] = {
        "agent_id": "room-main",
        "site": "s",
        "room": "主讲教室",
        "data_dir": str(tmp / "var"),
        "broker": {"url": "mqtt://127.0.0.1:1"},
        "sources": {"teacher": "synthetic:teacher", "courseware": "synthetic", "students": "synthetic"},
    }
    if lesson.pop("absent", False) is False:
        data["lesson"] = lesson
    return data


def test_lesson_defaults_cameras_at_720p30_and_the_courseware_sharp(tmp_path: Path) -> None:
    lesson = parse_config(site(tmp_path, send=["teacher", "courseware"])).lesson
    assert lesson is not None
    assert (CAMERA.size, CAMERA.fps, COURSEWARE.size, COURSEWARE.fps) == ((1280, 720), 30.0, (1920, 1080), 5.0)
    assert lesson.video_for("teacher", "synthetic") == CAMERA
    assert lesson.video_for("courseware", "synthetic") == COURSEWARE
    assert lesson.video_for("board", "screen") == COURSEWARE
    assert (lesson.audio, lesson.ice_servers, lesson.ice_host_addresses) == ("none", (), ())


def test_lesson_settings_are_read_and_overridable(tmp_path: Path) -> None:
    data = site(
        tmp_path,
        trusted=["room-a", "school-b/room-9"],
        send=["teacher"],
        answer_with=["students"],
        audio="tone:523.25",
        ice_host_addresses=["127.0.0.1", "::1"],
        ice_servers=[{"urls": "stun:stun.school:3478"}, {"urls": ["turn:t:3478"], "username": "u", "credential": "p"}],
        video={"camera": {"size": "640x360", "fps": 15}, "courseware": {"bitrate_kbps": 5000}},
    )
    lesson = parse_config(data).lesson
    assert lesson is not None
    assert lesson.trusts("s", "room-a") and lesson.trusts("school-b", "room-9") and not lesson.trusts("s", "room-9")
    assert lesson.video_for("teacher", "synthetic") == VideoSettings((640, 360), 15.0, 2000)
    assert lesson.video_for("courseware", "synthetic") == VideoSettings((1920, 1080), 5.0, 5000)
    assert [s.urls for s in lesson.ice_servers] == [("stun:stun.school:3478",), ("turn:t:3478",)]
    assert lesson.ice_host_addresses == ("127.0.0.1", "::1") and lesson.audio == "tone:523.25"


def test_every_lesson_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = site(
        tmp_path,
        send=["teacher", "blackboard"],
        answer_with="students",
        audio="teacher",
        ice_host_addresses=["eth0"],
        ice_servers=[{"urls": ["http://x"]}, {"urls": "turn:t:3478"}],
        video={"camera": {"size": "640x361", "fps": 0}, "projector": {}},
        renegotiate_after_s=1,
        colour="red",
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    text = str(caught.value)
    for expected in (
        "lesson.send[1]: got 'blackboard', expected a source declared in [sources]",
        "lesson.answer_with: got 'students', expected list",
        "lesson.audio: got 'teacher', expected an rtsp source",
        "lesson.ice_host_addresses[0]: got 'eth0', expected an IP address",
        "lesson.ice_servers[0].urls: got 'http://x', expected a stun:, stuns:, turn: or turns: URL",
        "lesson.ice_servers[1]: a TURN server needs username and credential",
        "lesson.video.camera.size: got '640x361', expected WIDTHxHEIGHT in even numbers",
        "lesson.video.camera.fps: got 0, expected a positive number",
        "lesson.video.projector: expected camera, courseware or a source declared in [sources]",
        "lesson.renegotiate_after_s: expected more than keyframe_after_s",
        "lesson.colour: unknown key",
    ):
        assert expected in text, text


def test_an_ice_server_written_as_a_bare_string_is_refused_without_echoing_it(tmp_path: Path) -> None:
    data = site(tmp_path, ice_servers=["turn:teacher:s3cret@turn.school:3478"])
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    text = str(caught.value)
    assert "lesson.ice_servers[0]: got a str, expected a table [[lesson.ice_servers]]" in text
    assert "s3cret" not in text  # a TURN credential typed in the wrong place never reaches a log


def test_an_agent_without_a_lesson_section_has_no_lesson_and_never_loads_webrtc(tmp_path: Path) -> None:
    code = (
        "import json, sys; from agent.config.site import parse_config; from agent.service import Agent; "
        f"a = Agent(parse_config(json.loads({json.dumps(json.dumps(site(tmp_path, absent=True)))}))); "
        "print(json.dumps([sorted({'aiortc', 'av'} & set(sys.modules)), a.lesson is None, "
        "[n for n in a.table.names() if n.startswith('lesson.')], a.status()['lesson']]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert json.loads(out.stdout) == [[], True, [], None], out.stderr


def test_an_agent_with_a_lesson_section_loads_webrtc_only_when_it_runs(tmp_path: Path) -> None:
    code = (
        "import json, sys; from agent.config.site import parse_config; from agent.service import Agent; "
        f"a = Agent(parse_config(json.loads({json.dumps(json.dumps(site(tmp_path, send=['teacher'])))}))); "
        "print(json.dumps(['aiortc' in sys.modules, [n for n in a.table.names() if n.startswith('lesson.')]]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    names = ["lesson.join", "lesson.leave", "lesson.mute", "lesson.peers"]
    names += ["lesson.start", "lesson.status", "lesson.stop"]
    assert json.loads(out.stdout) == [False, names], out.stderr


@pytest.mark.parametrize(
    ("words", "outcome"),
    [
        (["mode=zhuandi", "remotes=room-a,room-b"], "failed: the lesson service is not running"),
        (["mode=zhuandi", 'remotes=["room-a"]', "sources=teacher"], "failed: the lesson service is not running"),
        (["mode=zhuandi", "remotes=101"], "failed: the lesson service is not running"),
        (["mode=zhuandi", "remotes=[]"], "rejected: remotes: got [], expected a list of names"),
        (["mode=zhuandi", "remotes=a/b"], "rejected: remotes: got 'a/b', expected a name without / + #"),
        (["mode=zhuandi", "remotes=room-a", "sources=board"], "rejected: sources: got 'board', expected one of"),
        (["mode=zhuandi", "remotes=room-main"], "rejected: remotes: 'room-main' is this room"),
        (["mode=dual_teacher", "remotes=a,b"], "rejected: remotes: dual_teacher takes exactly one remote classroom"),
        (["mode=solo", "remotes=a"], "rejected: mode: got 'solo', expected one of zhuandi, dual_teacher"),
    ],
)
async def test_lesson_start_arguments_from_the_command_line(tmp_path: Path, words: list[str], outcome: str) -> None:
    agent = Agent(parse_config(site(tmp_path, send=["teacher"])))
    try:
        result = await agent.table.execute("lesson.start", parse_args_list(words))
        assert f"{result.status}: {result.error}".startswith(outcome), result
    finally:
        agent.store.close()
        agent.schedule.store.close()


def test_the_sfu_settings_are_read_with_their_defaults(tmp_path: Path) -> None:
    lesson = parse_config(site(tmp_path, send=["teacher"], sfu="http://sfu.school.lan:8088/janus")).lesson
    assert lesson is not None
    assert (lesson.sfu, lesson.sfu_room, lesson.sfu_min_remotes) == ("http://sfu.school.lan:8088/janus", 0, 1)
    data = site(tmp_path, sfu="https://10.0.0.5/janus", sfu_room=1234, sfu_min_remotes=4, sfu_timeout_s=3)
    lesson = parse_config(data).lesson
    assert lesson is not None and (lesson.sfu_room, lesson.sfu_min_remotes, lesson.sfu_timeout_s) == (1234, 4, 3.0)
    assert parse_config(site(tmp_path)).lesson.sfu == ""  # type: ignore[union-attr]  # peer to peer only


def test_every_sfu_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = site(tmp_path, sfu="sfu.school.lan:8088", sfu_room=0, sfu_min_remotes=0, sfu_timeout_s=-1)
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    text = str(caught.value)
    assert "lesson.sfu: got 'sfu.school.lan:8088', expected Janus's HTTP API" in text
    assert "lesson.sfu_room: got 0, expected a VideoRoom number 1..2147483647" in text
    assert "lesson.sfu_min_remotes: got 0, expected a number of remote classrooms, at least 1" in text
    assert "lesson.sfu_timeout_s: got -1, expected a positive number" in text
    with pytest.raises(ConfigError, match=r"lesson.sfu_room: set without lesson.sfu"):
        parse_config(site(tmp_path, sfu_room=5))
    with pytest.raises(ConfigError, match=r"lesson.sfu: got 8088, expected str"):
        parse_config(site(tmp_path, sfu=8088))


def test_relay_policy_reaches_the_lesson_peers_and_needs_a_turn_server(tmp_path: Path) -> None:
    turn = {"urls": ["turn:turn.school:3478?transport=udp"], "username": "agent", "credential": "s"}
    lesson = parse_config(site(tmp_path, ice_servers=[turn], ice_transport_policy="relay")).lesson
    assert lesson is not None and lesson.ice_transport_policy == "relay"
    from agent.lesson.media import LessonMedia

    ice = LessonMedia(lesson, {}, {}).ice()  # what every lesson, WHEP and SFU peer is built with
    assert ice.relay_only and ice.configuration().iceTransportPolicy.value == "relay"
    default = parse_config(site(tmp_path, ice_servers=[turn])).lesson
    assert default is not None and not LessonMedia(default, {}, {}).ice().relay_only
    bad = site(tmp_path, ice_servers=[{"urls": "stun:stun.school:3478"}], ice_transport_policy="relay", audio="x")
    with pytest.raises(ConfigError) as caught:
        parse_config(bad)
    text = str(caught.value)
    assert 'lesson.ice_transport_policy: got "relay" without a TURN server' in text, text
    assert "lesson.audio: got 'x'" in text  # reported together with the other problems
    with pytest.raises(ConfigError, match='lesson.ice_transport_policy: got \'direct\', expected "all" or "relay"'):
        parse_config(site(tmp_path, ice_transport_policy="direct"))


def test_the_busy_pc_thresholds_are_read_and_checked(tmp_path: Path) -> None:
    adapt = {"down_load": 0.9, "up_load": 0.4, "up_after_s": 20, "min_fps": 10, "min_height": 360}
    lesson = parse_config(site(tmp_path, send=["teacher"], adapt=adapt)).lesson
    assert lesson is not None and lesson.adapt.enabled
    assert (lesson.adapt.down_load, lesson.adapt.up_load, lesson.adapt.up_after_s) == (0.9, 0.4, 20.0)
    assert (lesson.adapt.min_fps, lesson.adapt.min_height) == (10.0, 360)
    off = parse_config(site(tmp_path, send=["teacher"], adapt={"enabled": False})).lesson
    assert off is not None and not off.adapt.enabled
    bad = {"down_load": 0.4, "up_load": 0.5, "min_fps": 0, "min_height": 8, "enabled": 1, "step": 2}
    with pytest.raises(ConfigError) as err:
        parse_config(site(tmp_path, send=["teacher"], adapt=bad))
    for expected in (
        "lesson.adapt.up_load: got 0.5, expected less than down_load (0.4)",
        "lesson.adapt.min_fps: got 0",
        "lesson.adapt.min_height: got 8",
        "lesson.adapt.enabled",
        "lesson.adapt.step: unknown key",
    ):
        assert expected in str(err.value)
