"""Recording a live lesson: the remote classroom's picture in the main classroom's recording.

Real agents in one process, real Mosquitto, real WebRTC on loopback, the real recorder; the
final MP4 is decoded and the burned-in stamps read back from each half of the picture.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import pytest
from test_lesson import SITE, call, peer, remote_config, running, stamps, until, write_config
from test_recording_sources import big_picture_config, left_and_right

from agent.alarms import Alarms
from agent.commands.record import add_record_commands
from agent.commands.table import CommandTable
from agent.config.site import SiteConfig, load_config
from agent.errors import ConfigError
from agent.lesson.pictures import Classroom, PictureRef, RecordingSources, source_for
from agent.recording.service import RecordingService
from agent.sources import make_source
from agent.store import AgentStore
from central.mosquitto import LocalBroker
from streaming import stamp
from streaming.compose import Layout

RECORDING = """
[recording]
layout = "side_by_side"
sources = {sources}
size = "1280x720"
fps = 10
audio = "none"
planned_minutes = 1
disk_min_free_gb = 0.1
"""


def recording_main(tmp: Path, broker: LocalBroker, sources: str = '["teacher", "remote:1"]') -> SiteConfig:
    """The main classroom, recording its teacher beside the first remote classroom."""
    lesson = 'send = ["teacher"]\ntrusted = []\n' + RECORDING.format(sources=sources)
    path = write_config(tmp, broker, "room-main", sources='teacher = "synthetic:teacher"', lesson=lesson)
    return load_config(path)


def halves(path: Path) -> list[tuple[int | None, int | None]]:
    """Per frame of an MP4: the stamp read in the left (teacher) and right (remote) view."""
    left, right = Layout("side_by_side", ("teacher", "remote:1"), (1280, 720), "bottom-right").views()
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="bgr24")
            reads = []
            for view in (left, right):
                read = stamp.read(image[view.y : view.y + view.height, view.x : view.x + view.width].copy())
                reads.append(None if read is None else read[0])
            out.append((reads[0], reads[1]))
    return out


async def test_the_recording_shows_the_remote_classroom_once_it_is_in_the_lesson(
    tmp_path: Path, broker: LocalBroker
) -> None:
    configs = recording_main(tmp_path, broker), remote_config(tmp_path, broker, "room-a")
    async with running(*configs) as (main, remote):
        started = await call(main, "record.start", lesson="zhuandi-recorded")
        assert started["id"]
        await until(lambda: int(main.recording.telemetry()["frames"]) > 10)  # before the lesson: no signal
        await call(main, "lesson.start", mode="zhuandi", remotes="room-a")
        await until(lambda: peer(main, "room-a").get("state") == "connected")
        await stamps(main, "room-a/students", 5)
        frames = int(main.recording.telemetry()["frames"])
        await until(lambda: int(main.recording.telemetry()["frames"]) > frames + 30)
        done = await call(main, "record.stop")

    seen = await asyncio.to_thread(halves, Path(done["file"]))
    assert len(seen) > 40, len(seen)
    assert seen[0][1] is None  # the remote classroom was not there yet: its "no signal" tile
    teacher = [t for t, _ in seen if t is not None]
    students = [s for _, s in seen if s is not None]
    assert len(teacher) >= len(seen) * 0.9, seen  # the local picture all along
    assert len(set(students)) >= 10, seen  # the remote classroom's moving picture, in its half
    assert students == sorted(students), students
    first = next(i for i, (_, s) in enumerate(seen) if s is not None)
    assert all(s is not None for _, s in seen[first + 5 :]), seen[first:]  # and it stayed


async def test_a_remote_classroom_sending_two_pictures_is_received_whole(tmp_path: Path, broker: LocalBroker) -> None:
    main = recording_main(tmp_path, broker, '["teacher", "remote:1/board"]')
    sources = 'students = "synthetic:students"\nboard = "synthetic:board"'
    lesson = 'answer_with = ["students", "board"]\ntrusted = ["room-main"]'
    room_a = load_config(write_config(tmp_path, broker, "room-a", sources=sources, lesson=lesson))
    async with running(main, room_a) as (leader, remote):
        await call(leader, "lesson.start", mode="zhuandi", remotes="room-a")
        await until(lambda: peer(leader, "room-a").get("state") == "connected")
        for picture in ("room-a/students", "room-a/board"):
            counters = await stamps(leader, picture, 10)
            assert counters == sorted(counters), (picture, counters)
        # The first offer had one slot; the answer said two pictures; the second offer took both.
        assert peer(leader, "room-a")["attempts"] == 2
        assert leader.lesson is not None
        board = RecordingSources({}, leader.lesson.classrooms).picture("remote:1/board")
        assert board is not None and board.latest() is not None
        assert remote.lesson is not None and remote.lesson.status()["peers"]["room-main"]["state"] == "connected"


def test_recording_sources_take_lesson_pictures_only_with_a_lesson(tmp_path: Path, broker: LocalBroker) -> None:
    config = recording_main(tmp_path, broker, '["teacher", "lesson:room-a/students"]')
    assert config.recording is not None and config.recording.sources == ("teacher", "lesson:room-a/students")

    with pytest.raises(ConfigError) as caught:
        recording_main(tmp_path, broker, '["teacher", "remote:0"]')
    expected = "recording.sources[1]: got 'remote:0', expected a source declared in [sources], remote:N"
    assert expected in str(caught.value)

    with pytest.raises(ConfigError) as caught:
        recording_main(tmp_path, broker, '["teacher", "remote:1"]\nresource_mode = true')
    assert "recording.resource_mode: expected false: remote:1 are lesson pictures" in str(caught.value)

    path = tmp_path / "no-lesson.toml"
    path.write_text(
        f'agent_id = "room-x"\nsite = "{SITE}"\nroom = "x"\ndata_dir = "{tmp_path / "x"}"\n'
        f'[broker]\nurl = "{broker.url}"\n[sources]\nteacher = "synthetic:teacher"\n'
        + RECORDING.format(sources='["teacher", "remote:1"]'),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "recording.sources[1]: got 'remote:1', expected a source declared in [sources]" in str(caught.value)


def test_picture_references_find_the_classroom_by_position_or_agent() -> None:
    a = Classroom("room-a", {"students": "A-students", "board": "A-board"}, ("students", "board"))
    b = Classroom("room-b", {"board": "B-board"}, ("students", "board"))  # students not arrived yet
    rooms = [a, b]

    def find(text: str) -> object:
        ref = PictureRef.parse(text)
        assert ref is not None, text
        return ref.find(rooms)

    assert find("remote:1") == "A-students" and find("remote:1/board") == "A-board"
    assert find("remote:2") == "B-board" and find("remote:3") is None
    assert find("lesson:room-b/board") == "B-board" and find("lesson:room-c/board") is None
    for bad in ("remote:0", "remote:x", "lesson:room-a", "teacher", "remote:1/"):
        assert PictureRef.parse(bad) is None, bad
    sources = RecordingSources({"teacher": "T"}, lambda: rooms)  # type: ignore[dict-item]
    assert list(sources) == ["teacher"] and sources.picture("remote:1") is not None
    assert sources.picture("remote:0") is None
    with pytest.raises(KeyError):
        sources["nothing"]


def test_recording_sources_is_a_mapping_whose_membership_keys_size_and_lookup_agree() -> None:
    rooms = [Classroom("room-a", {"students": "A-students", "board": "A-board"}, ("students", "board"))]
    sources = RecordingSources({"teacher": "T", "students": "S"}, lambda: rooms)  # type: ignore[dict-item]
    asked = ("teacher", "students", "remote:1", "remote:1/board", "lesson:room-a/board", "remote:0", "nothing")
    assert [key for key in asked if key in sources] == list(sources) == list(sources.keys()) == ["teacher", "students"]
    assert len(sources) == 2 and dict(sources) == {"teacher": "T", "students": "S"}
    for key in asked:
        if key in sources:
            assert sources[key] == sources.get(key) is not None
        else:
            with pytest.raises(KeyError):
                sources[key]
            assert sources.get(key) is None
    # a lesson picture is found by its reference, not as a key: the room's own sources stay what they are
    assert source_for(sources, "teacher") == "T"
    assert source_for(sources, "remote:1").current() == "A-students"  # type: ignore[attr-defined]
    assert source_for(sources, "lesson:room-a/board").current() == "A-board"  # type: ignore[attr-defined]
    assert source_for(sources, "remote:1") is source_for(sources, "remote:1")
    for bad in ("remote:0", "nothing"):
        with pytest.raises(KeyError):
            source_for(sources, bad)
    with pytest.raises(KeyError):
        source_for({"teacher": "T"}, "remote:1")  # type: ignore[dict-item]  # a room without [lesson]


async def test_record_start_with_remote_n_records_the_first_classrooms_picture(tmp_path: Path) -> None:
    config = big_picture_config(tmp_path)
    assert config.recording is not None
    own = {name: make_source(f"synthetic:{name}", name, (1280, 720), 10) for name in ("teacher", "students")}
    board = make_source("synthetic:board", "board", (1280, 720), 10)  # what room-a sends in the lesson
    rooms = [Classroom("room-a", {"board": board}, ("board",))]
    store = AgentStore(config.db_path)
    service = RecordingService(config.recording, RecordingSources(own, lambda: rooms), store, Alarms(lambda e: None))
    table = CommandTable()
    add_record_commands(table, service)
    for source in (*own.values(), board):
        source.start()
    try:
        args = {"lesson": "专递课", "layout": "side_by_side", "sources": "remote:1, teacher"}
        started = await table.execute("record.start", args)
        assert started.status == "succeeded", started
        await until(lambda: int(service.telemetry()["frames"]) > 30)
        stopped = await table.execute("record.stop", {})
        assert stopped.status == "succeeded", stopped
    finally:
        for source in (*own.values(), board):
            source.stop()
        store.close()
    seen = await asyncio.to_thread(left_and_right, Path(stopped.result["file"]), ("remote:1", "teacher"))
    remote = [r for r, _ in seen if r is not None]
    assert len(set(remote)) >= 10 and remote == sorted(remote), seen  # room-a's moving board, on the left
