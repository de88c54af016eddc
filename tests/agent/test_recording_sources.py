"""What a recording records: resource mode's per-source files, record.start's sources with the lesson's pictures."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import av.error
import pytest
from test_recording import read_toml, until, write_config

from agent.alarms import Alarms
from agent.commands.record import add_record_commands
from agent.commands.table import CommandTable, Failed
from agent.config.site import SiteConfig, load_config, parse_config
from agent.errors import ConfigError
from agent.lesson.pictures import Classroom, RecordingSources
from agent.recording.service import RecordingService
from agent.sources import make_source
from agent.store import AgentStore
from streaming import stamp
from streaming.compose import Layout


def test_resource_mode_is_a_boolean_in_the_recording_section(tmp_path: Path) -> None:
    data = read_toml(write_config(tmp_path, "mqtt://127.0.0.1:1883"))
    assert parse_config(data, base=tmp_path).recording.resource_mode is False  # type: ignore[union-attr]
    data["recording"]["resource_mode"] = True
    assert parse_config(data, base=tmp_path).recording.resource_mode is True  # type: ignore[union-attr]
    data["recording"]["resource_mode"] = "yes"
    with pytest.raises(ConfigError, match=r"recording.resource_mode: got 'yes', expected bool"):
        parse_config(data, base=tmp_path)


async def test_resource_mode_that_would_not_fit_is_refused_naming_the_per_source_files(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    # the composed picture alone needs 60 % of the free space; with each source's own file, 180 %
    minutes = 0.3 * free / (1e6 / 8 * 60)  # at the config's 1 Mbit/s
    path = write_config(tmp_path, "mqtt://127.0.0.1:1", planned_minutes=minutes, recording="resource_mode = true")
    config = load_config(path)
    assert config.recording is not None and config.recording.needed_bytes() < free
    sources = {name: make_source(f"synthetic:{name}", name, (320, 240), 10) for name in ("teacher", "students")}
    store = AgentStore(config.db_path)
    alarms = Alarms(lambda event: None)
    try:
        with pytest.raises(Failed) as refused:
            await RecordingService(config.recording, sources, store, alarms).start("物理")
        assert store.recordings() == []
    finally:
        store.close()
    message = str(refused.value)
    assert "not enough disk space to record" in message and "and 2 source file(s) of resource mode" in message
    needed_gib = float(message.split(" GiB needed")[0].rsplit(", ", 1)[1])
    assert needed_gib > free / 2**30  # the per-source files are counted: the composed picture alone would fit
    assert alarms.open[("disk_low", "recording")].message == message
    assert not (tmp_path / "recordings").exists()


# ---- record.start sources: this recording's sources, lesson pictures included ---------------------------


def big_picture_config(tmp: Path, **kw: Any) -> SiteConfig:
    """The test room at 1280x720, where the burned-in stamps survive the side-by-side halves."""
    data = read_toml(write_config(tmp, "mqtt://127.0.0.1:1", **kw))
    data["recording"]["size"] = "1280x720"
    return parse_config(data, base=tmp)


def left_and_right(path: Path, sources: tuple[str, str]) -> list[tuple[int | None, int | None]]:
    """Per frame of a side-by-side MP4: the stamp counter read in the left and in the right view."""
    views = Layout("side_by_side", sources, (1280, 720), "bottom-right").views()
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="bgr24")
            reads = [stamp.read(image[v.y : v.y + v.height, v.x : v.x + v.width].copy()) for v in views]
            out.append((reads[0] and reads[0][0], reads[1] and reads[1][0]))
    return out


async def test_record_start_sources_records_a_lesson_picture_beside_the_teacher_and_indexes_them(
    tmp_path: Path,
) -> None:
    config = big_picture_config(tmp_path)
    assert config.recording is not None and config.recording.sources == ("teacher", "students")
    own = {name: make_source(f"synthetic:{name}", name, (1280, 720), 10) for name in ("teacher", "students")}
    board = make_source("synthetic:board", "board", (1280, 720), 10)  # what room-a sends in the lesson
    rooms: list[Classroom] = []  # no lesson yet: the remote picture is "no signal"
    store = AgentStore(config.db_path)
    alarms = Alarms(lambda event: None)
    service = RecordingService(config.recording, RecordingSources(own, lambda: rooms), store, alarms)
    table = CommandTable()
    add_record_commands(table, service)
    for source in (*own.values(), board):
        source.start()
    try:
        args = {"lesson": "专递课", "layout": "side_by_side", "sources": "lesson:room-a/board, teacher"}
        started = await table.execute("record.start", args)
        assert started.status == "succeeded", started
        (row,) = store.recordings()
        assert (row["sources"], row["layout"]) == (["lesson:room-a/board", "teacher"], "side_by_side")
        await until(lambda: int(service.telemetry()["frames"]) > 10)
        rooms.append(Classroom("room-a", {"board": board}, ("board",)))  # room-a joins the lesson
        frames = int(service.telemetry()["frames"])
        await until(lambda: int(service.telemetry()["frames"]) > frames + 20)
        stopped = await table.execute("record.stop", {})
        assert stopped.status == "succeeded", stopped
    finally:
        for source in (*own.values(), board):
            source.stop()
        store.close()

    seen = await asyncio.to_thread(left_and_right, Path(stopped.result["file"]), ("lesson:room-a/board", "teacher"))
    assert len(seen) > 30, len(seen)
    assert seen[0][0] is None  # room-a was not in the lesson yet: its "no signal" tile, on the left
    teacher = [t for _, t in seen if t is not None]
    remote = [r for r, _ in seen if r is not None]
    assert len(teacher) >= len(seen) * 0.9, seen  # the teacher on the right all along
    assert len(set(remote)) >= 10 and remote == sorted(remote), seen  # room-a's moving picture once it joined


async def test_record_start_sources_that_cannot_be_recorded_are_rejected_by_name_and_nothing_starts(
    tmp_path: Path,
) -> None:
    rules = '{ when = "students active", show = "students" }, { when = "always", show = "teacher" }'
    director = f"[director]\nrules = [{rules}]"
    config = big_picture_config(tmp_path, extra=director)
    assert config.recording is not None
    own = {name: make_source(f"synthetic:{name}", name, (1280, 720), 10) for name in ("teacher", "students")}
    store = AgentStore(config.db_path)
    service = RecordingService(config.recording, RecordingSources(own, list), store, Alarms(lambda event: None))
    resource = RecordingService(
        replace(config.recording, resource_mode=True), RecordingSources(own, list), store, Alarms(lambda event: None)
    )
    table, resource_table = CommandTable(), CommandTable()
    add_record_commands(table, service)
    add_record_commands(resource_table, resource)
    refusals = [
        (table, {"sources": "teacher,blackboard"}, "sources: got 'blackboard', expected one of teacher, students or "
         "remote:N, remote:N/SOURCE or lesson:AGENT/SOURCE"),
        (table, {"sources": "remote:0/board"}, "sources: got 'remote:0/board', expected one of teacher, students"),
        (table, {"sources": ["teacher", 7]}, "sources: got 7, expected a name"),
        (table, {"sources": "teacher", "layout": "pip"}, "layout: layout 'pip': got 1 sources, expected 2 to 3"),
        (table, {"sources": "teacher", "layout": "directed"},
         "sources: the director's rules show students, which sources leaves out"),
        (resource_table, {"sources": "teacher,remote:1"},
         "sources: remote:1: resource mode records only the room's own sources"),
    ]  # fmt: skip
    try:
        for commands, args, expected in refusals:
            outcome = await commands.execute("record.start", {"lesson": "物理", **args})
            assert outcome.status == "rejected" and expected in outcome.error, (args, outcome)
        assert store.recordings() == [] and not (tmp_path / "recordings").exists()  # nothing started
        assert service.telemetry()["active"] is False and resource.telemetry()["active"] is False
    finally:
        store.close()
