"""Recording as an agent service: sources, record.start/stop through the command table, agent.db, the disk guard.

Real encoders, a real agent.db, synthetic sources, a real Mosquitto where the MQTT door is used.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import av
import av.error
import pytest
from rooms import site_toml
from test_service import command, listen, running  # the agent test helpers (tests/agent is on sys.path)

from agent.alarms import Alarms
from agent.commands.record import add_record_commands
from agent.commands.table import CommandTable, Failed
from agent.config.site import SiteConfig, load_config, parse_config
from agent.errors import ConfigError
from agent.lesson.pictures import Classroom, RecordingSources
from agent.recording.service import RecordingService, timetable_lesson_on
from agent.service import Agent
from agent.sources import make_source
from agent.store import AgentStore, RecordingRow, RecordingState
from agent.timetable.parse import parse_timetable
from central.mosquitto import LocalBroker, free_port
from contract import DeviceInfo, Info, SourceInfo, to_iso
from streaming import stamp
from streaming.compose import Layout
from streaming.segments import FINAL_NAME, INDEX_NAME, fragments

SITE, AGENT = "test-school", "room-9"
ROOT = f"classroom/v1/{SITE}/{AGENT}"
FRAGMENT_FRAMES = 5  # fragment_s x fps below


def write_config(
    tmp: Path,
    broker_url: str,
    *,
    sources: str = "",
    recording: str = "",
    min_free_gb: float = 0,
    planned_minutes: float = 10,
    extra: str = "",
) -> Path:
    return site_toml(
        tmp,
        broker_url,
        f"""[intervals]
telemetry_s = 0.5
[sources]
{sources or 'teacher = "synthetic:teacher"' + chr(10) + 'students = "synthetic:students"'}
[recording]
dir = "{tmp / "recordings"}"
layout = "pip"
sources = ["teacher", "students"]
size = "320x240"
fps = 10
fragment_s = 0.5
segment_s = 60
bitrate_mbps = 1
planned_minutes = {planned_minutes}
disk_min_free_gb = {min_free_gb}
{recording}
{extra}
""",
        agent_id=AGENT,
        site=SITE,
        room="录播教室 9",
    )


def config_for(tmp: Path, broker: LocalBroker, **kw: Any) -> SiteConfig:
    return load_config(write_config(tmp, broker.url, **kw))


async def until(check: Any, timeout: float = 30.0) -> Any:
    """Poll a condition (files on disk, rows) within a deadline."""
    async with asyncio.timeout(timeout):
        while not (found := check()):
            await asyncio.sleep(0.1)
    return found


def segment_fragments(directory: Path, name: str) -> int:
    path = directory / name
    return fragments(path) if path.exists() else 0


def decode_all(path: Path) -> tuple[int, int, bool, str]:
    """Decode every video packet: (frames, undecodable packets, audio present, video codec)."""
    frames = damaged = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                frames += len(packet.decode())
            except av.error.InvalidDataError:
                damaged += 1
        return frames, damaged, bool(container.streams.audio), stream.codec_context.name


async def test_record_start_and_stop_over_mqtt_index_a_playable_checksummed_mp4(
    tmp_path: Path, broker: LocalBroker
) -> None:
    config = config_for(tmp_path, broker)
    async with running(config) as agent, listen(broker, f"{ROOT}/#") as (inbox, client):

        async def ask(name: str, args: dict[str, Any]) -> dict[str, Any]:
            payload = command(name, args)
            ident = json.loads(payload)["id"]
            await client.publish(f"{ROOT}/cmd/{name}", payload, qos=1)
            return await inbox.until(lambda: next((p for p in inbox.on(f"{ROOT}/reply") if p["id"] == ident), None))

        started = await ask("record.start", {"lesson": "物理 第3课", "teacher": "王老师"})
        assert started["status"] == "succeeded", started
        directory = Path(started["result"]["path"])
        assert directory.parent == tmp_path / "recordings"
        await until(lambda: segment_fragments(directory, "segment-0001.mp4") >= 2)

        again = await ask("record.start", {"lesson": "another"})
        assert again["status"] == "rejected"
        assert "already recording '物理 第3课'" in again["error"]

        busy = await inbox.until(
            lambda: [t for t in inbox.on(f"{ROOT}/telemetry") if t["recording"]["active"] and t["recording"]["frames"]]
        )
        assert busy[-1]["recording"]["lesson"] == "物理 第3课"
        row = agent.store.recordings()[0]
        assert row["state"] == "recording" and row["sources"] == ["teacher", "students"] and row["layout"] == "pip"

        stopped = await ask("record.stop", {})
        assert stopped["status"] == "succeeded", stopped
        final = directory / FINAL_NAME
        assert stopped["result"]["file"] == str(final)

        (row,) = agent.store.recordings()
        assert (row["state"], row["lesson"], row["teacher"]) == ("finished", "物理 第3课", "王老师")
        assert row["started"] <= row["ended"]
        assert row["size"] == final.stat().st_size
        assert row["sha256"] == hashlib.sha256(final.read_bytes()).hexdigest()
        frames, damaged, has_audio, codec = await asyncio.to_thread(decode_all, final)
        assert frames == stopped["result"]["frames"] > 0 and damaged == 0
        assert has_audio and codec == "h264"
        assert json.loads((directory / INDEX_NAME).read_text())["state"] == "finished"

        not_recording = await ask("record.stop", {})
        assert (not_recording["status"], not_recording["error"]) == ("rejected", "not recording")
        await inbox.until(lambda: [t for t in inbox.on(f"{ROOT}/telemetry") if not t["recording"]["active"]])


async def test_disk_guard_refuses_to_start_with_the_numbers_and_writes_nothing(
    tmp_path: Path, broker: LocalBroker
) -> None:
    async with running(config_for(tmp_path, broker, min_free_gb=10**9)) as agent:
        outcome = await agent.table.execute("record.start", {"lesson": "英语"}, by="test", door="local")
        assert outcome.status == "failed"
        assert "not enough disk space to record" in outcome.error
        assert "GiB free on" in outcome.error and "1000000000.0 GiB needed" in outcome.error
        assert not (tmp_path / "recordings").exists()
        assert agent.store.recordings() == []
        alarm = agent.alarms.open[("disk_low", "recording")]
        assert alarm.severity == "critical" and "GiB needed" in alarm.message
        assert agent.recording.telemetry()["active"] is False


def _toml(path: Path) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(path.read_text())


def test_kill_9_mid_lesson_then_record_start_continues_the_same_lesson_in_a_new_segment(
    tmp_path: Path, broker: LocalBroker
) -> None:
    config_path = write_config(tmp_path, broker.url)
    config = load_config(config_path)
    lesson = "数学 期中复习"

    def call(*words: str) -> dict[str, Any]:
        argv = [sys.executable, "-m", "agent.cli", "call", "--config", str(config_path), *words]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        return dict(json.loads(done.stdout))

    async def main() -> None:
        log = open(tmp_path / "agent.log", "w")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(config_path)], stderr=log)
        try:
            started = None
            async with asyncio.timeout(60):
                while started is None:  # until the agent's local API answers
                    try:
                        started = await asyncio.to_thread(call, "record.start", f"lesson={lesson}")
                    except json.JSONDecodeError:
                        await asyncio.sleep(0.3)
            assert started["status"] == "succeeded", (started, (tmp_path / "agent.log").read_text()[-3000:])
            directory = Path(started["result"]["path"])
            await until(lambda: segment_fragments(directory, "segment-0001.mp4") >= 3)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            proc.kill()
            proc.wait(10)
        assert not (directory / FINAL_NAME).exists()

        async with running(config) as agent:
            (row,) = agent.store.recordings()
            assert (row["state"], row["lesson"]) == ("interrupted", lesson)
            other = await agent.table.execute("record.start", {"lesson": "另一课"})
            assert other.status == "succeeded" and other.result["path"] != str(directory)
            await agent.table.execute("record.stop", {})

            resumed = await agent.table.execute("record.start", {"lesson": lesson})
            assert resumed.status == "succeeded", resumed
            assert resumed.result == {"id": directory.name, "lesson": lesson, "path": str(directory), "resumed": True}
            await until(lambda: segment_fragments(directory, "segment-0002.mp4") >= 2)
            stopped = await agent.table.execute("record.stop", {})
            assert stopped.status == "succeeded", stopped

            rows = {r["id"]: r for r in agent.store.recordings()}
            assert rows[directory.name]["state"] == "finished"
            assert rows[directory.name]["started"] == row["started"]  # the same recording, not a new one
        index = json.loads((directory / INDEX_NAME).read_text())
        segments = index["segments"]
        assert [s["file"] for s in segments] == ["segment-0001.mp4", "segment-0002.mp4"]
        assert segments[0]["state"] == "recovered" and segments[0]["frames"] > 0
        assert segments[1]["state"] == "closed"
        assert index["final"]["frames"] == segments[0]["frames"] + segments[1]["frames"]
        frames, damaged, _, _ = await asyncio.to_thread(decode_all, directory / FINAL_NAME)
        assert (frames, damaged) == (index["final"]["frames"], 0)  # a torn fragment stays out of the final MP4

    asyncio.run(main())


async def test_source_health_in_telemetry_info_redacts_and_an_unserved_rtsp_camera_raises_source_offline(
    tmp_path: Path, broker: LocalBroker
) -> None:
    camera = f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/live"
    sources = f'teacher = "synthetic:teacher"\nstudents = "{camera}"'
    config = config_for(tmp_path, broker, sources=sources)
    async with listen(broker, f"{ROOT}/#") as (inbox, _), running(config):  # events are not retained
        raised = await inbox.until(
            lambda: [e for e in inbox.on(f"{ROOT}/event") if e["type"] == "source_offline" and e["action"] == "raise"]
        )
        assert raised[0]["device"] == "students" and "s3cret" not in raised[0]["message"]
        assert not [e for e in inbox.on(f"{ROOT}/event") if e["type"] == "source_offline" and e["device"] == "teacher"]

        healthy = await inbox.until(
            lambda: [t for t in inbox.on(f"{ROOT}/telemetry") if t["sources"]["teacher"]["fps"] > 0]
        )
        sources_now = healthy[-1]["sources"]
        assert sources_now["teacher"]["connected"] is True
        assert sources_now["teacher"]["last_frame_age_s"] is not None
        assert sources_now["students"]["connected"] is False
        assert sources_now["students"]["last_frame_age_s"] is None
        assert sources_now["students"]["kind"] == "rtsp" and "outages" in sources_now["students"]

        info = (await inbox.until(lambda: inbox.on(f"{ROOT}/info")))[-1]
        assert {s["id"]: s["kind"] for s in info["sources"]} == {"teacher": "synthetic", "students": "rtsp"}
        cam = next(s for s in info["sources"] if s["id"] == "students")
        assert "s3cret" not in cam["url"] and "admin:***@127.0.0.1" in cam["url"]


def test_source_and_recording_problems_are_all_reported_at_once(tmp_path: Path) -> None:
    data = _toml(write_config(tmp_path, "mqtt://127.0.0.1:1883"))
    data["sources"] = {"teacher": "ftp://cam/1", "students": "rtsp:nohost", "screen": 5, "board": "synthetic"}
    data["recording"] = {
        "layout": "pip",
        "sources": ["board", "ghost"],
        "size": "641x480",
        "audio": "loud",
        "fragment_s": 10,
        "segment_s": 5,
        "colour": "yes",
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data, base=tmp_path)
    message = str(caught.value)
    for expected in [
        "sources.teacher: got 'ftp://cam/1', expected rtsp://",
        "sources.students: got 'rtsp:nohost'",
        "sources.screen: got 5, expected a URL string",
        "recording.sources[1]: got 'ghost', expected a source declared in [sources]",
        "recording.size: got '641x480'",
        "recording.audio: got 'loud'",
        "recording.fragment_s: got 10, expected at most segment_s (5)",
        "recording.colour: unknown key",
    ]:
        assert expected in message, message

    data["sources"] = {"board": "synthetic"}
    data["recording"] = {"layout": "side_by_side", "sources": ["board"]}
    with pytest.raises(ConfigError, match=r"recording.layout: layout 'side_by_side': got 1 sources, expected 2"):
        parse_config(data, base=tmp_path)


def test_recording_audio_names_the_mic_or_an_rtsp_camera(tmp_path: Path) -> None:
    data = _toml(write_config(tmp_path, "mqtt://127.0.0.1:1883"))
    data["sources"] = {"board": "synthetic", "cam": "rtsp://127.0.0.1:8554/cam"}
    for audio in ("cam", "mic", "mic:hw:1", "tone", "none"):
        data["recording"] = {"layout": "single", "sources": ["board"], "audio": audio}
        assert parse_config(data, base=tmp_path).recording.audio == audio  # type: ignore[union-attr]
    data["recording"] = {"layout": "single", "sources": ["board"], "audio": "board"}
    with pytest.raises(ConfigError, match=r"recording.audio: got 'board', expected an rtsp source"):
        parse_config(data, base=tmp_path)


def test_an_agent_without_sources_does_not_load_the_media_stack(tmp_path: Path) -> None:
    path = write_config(tmp_path, "mqtt://127.0.0.1:1")
    data = _toml(path)
    del data["sources"], data["recording"]
    code = (
        "import json, sys; from pathlib import Path; from agent.config.site import parse_config; "
        "from agent.service import Agent; "
        f"a = Agent(parse_config(json.loads({json.dumps(json.dumps(data))}))); "
        "print(sorted({'av', 'cv2'} & set(sys.modules)), a.recording.telemetry()['active'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["[]", "False"], out.stderr


async def test_record_start_without_a_recording_section_is_rejected_with_the_reason(
    tmp_path: Path, broker: LocalBroker
) -> None:
    data = _toml(write_config(tmp_path, broker.url))
    del data["recording"]
    async with running(parse_config(data, base=tmp_path)) as agent:
        outcome = await agent.table.execute("record.start", {})
        assert outcome.status == "rejected" and "[recording]" in outcome.error


async def test_retention_deletes_only_uploaded_recordings_older_than_retention_days(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "mqtt://127.0.0.1:1", recording="retention_days = 7"))
    agent = Agent(config)
    root = tmp_path / "recordings"
    rows = {
        "old-uploaded": ("uploaded", "2020-01-01T08:00:00Z"),
        "new-uploaded": ("uploaded", "2999-01-01T08:00:00Z"),
        "old-finished": ("finished", "2020-01-01T08:00:00Z"),
    }
    for name, (state, ended) in rows.items():
        (root / name).mkdir(parents=True)
        (root / name / FINAL_NAME).write_bytes(b"x")
        agent.store.recording_put(
            {"id": name, "lesson": name, "started": ended, "ended": ended, "path": str(root / name), "state": state}
        )
    try:
        assert await agent.recording.apply_retention() == 1
        assert sorted(r["id"] for r in agent.store.recordings()) == ["new-uploaded", "old-finished"]
        assert sorted(p.name for p in root.iterdir()) == ["new-uploaded", "old-finished"]
    finally:
        agent.store.close()


def test_recordings_left_recording_by_a_crash_are_marked_interrupted_at_startup(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "mqtt://127.0.0.1:1"))
    store = AgentStore(config.db_path)
    store.recording_put({"id": "r1", "lesson": "l", "started": "2026-01-01T08:00:00Z", "state": "recording"})
    store.recording_put({"id": "r2", "lesson": "l", "started": "2026-01-01T09:00:00Z", "state": "finished"})
    store.close()
    agent = Agent(config)
    try:
        assert {r["id"]: r["state"] for r in agent.store.recordings()} == {"r1": "interrupted", "r2": "finished"}
    finally:
        agent.store.close()


def test_recording_rows_are_typed_and_store_the_same_state_strings_as_before(tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "agent.db")
    try:
        # as an older agent wrote it: plain strings, and columns never written (NULL)
        store.conn.execute("INSERT INTO recordings(id, state, sources) VALUES ('old', 'finishing', '[\"teacher\"]')")
        row = RecordingRow("r1", "物理", started="2026-01-01T08:00:00Z", sources=("teacher", "students"))
        store.recording_put(row)
        assert store.recording("r1") == row and RecordingRow.from_dict(row.to_dict()) == row
        assert store.recording("old") == RecordingRow("old", sources=("teacher",), state=RecordingState.FINISHING)
        store.mark("r1", RecordingState.UPLOADED, ended="2026-01-01T09:00:00Z")
        assert store.conn.execute("SELECT state FROM recordings WHERE id = 'r1'").fetchone() == ("uploaded",)
        assert [r.id for r in store.recordings_in(RecordingState.UPLOADED, RecordingState.FINISHING)] == ["r1", "old"]
        assert [r.id for r in store.uploaded_before("2026-01-02T00:00:00Z")] == ["r1"]
        assert store.uploaded_before("2026-01-01T00:00:00Z") == [] and store.recording("gone") is None
        assert {str(s) for s in RecordingState} == {
            "recording", "interrupted", "finishing", "finished", "uploaded", "failed"
        }  # fmt: skip
    finally:
        store.close()


def test_info_with_sources_round_trips() -> None:
    info = Info(
        "room", "pc", "1.0", (DeviceInfo("panel", "display", "lg"),), 5.0,
        (SourceInfo("teacher", "rtsp", "rtsp://admin:***@10.0.0.5/main"),),
    )  # fmt: skip
    assert Info.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    assert Info.from_dict({"room": "r", "devices": []}).sources == ()


def timetable(lesson: str, *, on_now: bool) -> str:
    """A [timetable] (Beijing time) whose recorded `lesson` is under way now, or takes place on another weekday."""
    beijing = datetime.now(UTC) + timedelta(hours=8)
    start, end = beijing - timedelta(minutes=5), beijing + timedelta(minutes=40)
    if start.date() != end.date():  # a lesson cannot cross midnight
        start, end = beijing.replace(hour=0, minute=0), beijing.replace(hour=23, minute=59)
    day = beijing.isoweekday() if on_now else beijing.isoweekday() % 7 + 1
    return f"""
[timetable]
timezone = "+08:00"
[[timetable.lessons]]
day = {day}
start = "{start:%H:%M}"
end = "{end:%H:%M}"
name = "{lesson}"
record = true
"""


def segment_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("segment-*.mp4"))


def test_sigterm_mid_lesson_halts_within_the_grace_resumes_in_the_lesson_and_finishes_after_it(
    tmp_path: Path, broker: LocalBroker
) -> None:
    lesson = "语文 第五课"
    config_path = write_config(tmp_path, broker.url, extra=timetable(lesson, on_now=True))
    recordings = tmp_path / "recordings"

    async def main() -> None:
        log_path = tmp_path / "agent.log"
        with log_path.open("w") as log:  # the timetable starts the recording by itself
            argv = [sys.executable, "-m", "agent.cli", "run", "--config", str(config_path)]
            proc = subprocess.Popen(argv, stderr=log)
            try:
                directory = await until(lambda: next(recordings.glob("*"), None), 60)
                await until(lambda: segment_fragments(directory, "segment-0001.mp4") >= 3)
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(proc.wait, 60)
            finally:
                proc.kill()
                proc.wait(10)
        output = log_path.read_text()
        assert code == 0 and "did not stop in time" not in output, output[-3000:]
        assert not (directory / FINAL_NAME).exists()  # no remux on the way down
        index = json.loads((directory / INDEX_NAME).read_text())
        assert index["state"] == "recording"
        assert [(s["file"], s["state"]) for s in index["segments"]] == [("segment-0001.mp4", "closed")]
        frames, damaged, has_audio, _ = await asyncio.to_thread(decode_all, directory / "segment-0001.mp4")
        assert (frames, damaged) == (index["segments"][0]["frames"], 0) and frames > 0 and has_audio

        # restarted inside the lesson: the timetable continues the same recording into a new segment
        async with running(load_config(config_path)) as agent:
            await until(lambda: segment_fragments(directory, "segment-0002.mp4") >= 2)
            (row,) = agent.store.recordings()
            assert (row["id"], row["state"], row["lesson"]) == (directory.name, "recording", lesson)
        store = AgentStore(load_config(config_path).db_path)
        (row,) = store.recordings()
        store.close()
        assert row["state"] == "interrupted" and not (directory / FINAL_NAME).exists()

        # restarted after the lesson: the halted recording is finished (remuxed) without recording more
        over = write_config(tmp_path, broker.url, extra=timetable(lesson, on_now=False))
        async with running(load_config(over)) as agent:
            await until(lambda: agent.store.recordings()[0]["state"] == "finished")
            (row,) = agent.store.recordings()
            assert agent.recording.telemetry()["active"] is False
        final = directory / FINAL_NAME
        assert row["size"] == final.stat().st_size
        assert row["sha256"] == hashlib.sha256(final.read_bytes()).hexdigest()
        index = json.loads((directory / INDEX_NAME).read_text())
        assert index["state"] == "finished" and segment_files(directory) == ["segment-0001.mp4", "segment-0002.mp4"]
        assert index["final"]["frames"] == sum(s["frames"] for s in index["segments"])
        frames, damaged, has_audio, codec = await asyncio.to_thread(decode_all, final)
        assert (frames, damaged, has_audio, codec) == (index["final"]["frames"], 0, True, "h264")

    asyncio.run(main())


def test_resource_mode_is_a_boolean_in_the_recording_section(tmp_path: Path) -> None:
    data = _toml(write_config(tmp_path, "mqtt://127.0.0.1:1883"))
    assert parse_config(data, base=tmp_path).recording.resource_mode is False  # type: ignore[union-attr]
    data["recording"]["resource_mode"] = True
    assert parse_config(data, base=tmp_path).recording.resource_mode is True  # type: ignore[union-attr]
    data["recording"]["resource_mode"] = "yes"
    with pytest.raises(ConfigError, match=r"recording.resource_mode: got 'yes', expected bool"):
        parse_config(data, base=tmp_path)


BEIJING = timezone(timedelta(hours=8))
MONDAY_8AM = datetime(2026, 11, 16, 8, 0, tzinfo=BEIJING)
WEEKLY = parse_timetable(
    {"timezone": "+08:00", "lessons": [{"day": 1, "start": "08:00", "end": "08:45", "name": "物理", "record": True}]}
)


def test_only_this_lessons_recording_counts_as_on_a_few_minutes_early_included() -> None:
    now = MONDAY_8AM + timedelta(minutes=30)

    def on(started: datetime, lesson: str = "物理") -> bool | None:
        return timetable_lesson_on(WEEKLY, now, {"lesson": lesson, "started": to_iso(started)})

    assert on(MONDAY_8AM + timedelta(minutes=1)) is True
    assert on(MONDAY_8AM - timedelta(minutes=5)) is True  # the teacher pressed record a little early
    assert on(MONDAY_8AM - timedelta(minutes=30)) is False  # long before the lesson: another recording
    assert on(MONDAY_8AM + timedelta(minutes=1) - timedelta(days=7)) is False  # last week's lesson
    assert timetable_lesson_on(WEEKLY, now, {"lesson": "物理", "started": "garbage"}) is False
    assert on(MONDAY_8AM, lesson="补课") is None  # not in the timetable: planned_minutes decides
    assert timetable_lesson_on(WEEKLY, now + timedelta(hours=1), {"lesson": "物理", "started": to_iso(now)}) is False


async def test_a_weekly_lesson_continues_only_its_own_interrupted_recording_never_last_weeks(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "mqtt://127.0.0.1:1"))
    assert config.recording is not None
    size, fps = config.recording.size, config.recording.fps
    sources = {name: make_source(f"synthetic:{name}", name, size, fps) for name in ("teacher", "students")}
    store = AgentStore(config.db_path)
    now = [MONDAY_8AM - timedelta(days=7) + timedelta(minutes=5)]  # last week's lesson, 08:05

    async def agent_run(lesson: str, segment: str, until_row: tuple[str, str] | None = None) -> dict[str, Any]:
        """One agent's life with the injected clock: record.start, a few fragments, the agent stops (halts)."""
        service = RecordingService(
            config.recording, sources, store, Alarms(lambda event: None),
            lesson_on=lambda row: timetable_lesson_on(WEEKLY, now[0], row), clock=lambda: now[0],
        )  # fmt: skip
        started = await service.start(lesson)  # before the finisher's first pass: the race of a restart
        task = asyncio.create_task(service.run())
        try:
            await until(lambda: segment_fragments(Path(started["path"]), segment) >= 2)
            if until_row is not None:
                ident, state = until_row
                await until(lambda: (row := store.recording(ident)) is not None and row.state == state)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return started

    for source in sources.values():
        source.start()
    try:
        last_week = await agent_run("物理", "segment-0001.mp4")
        old = Path(last_week["path"])
        now[0] = MONDAY_8AM + timedelta(minutes=5)  # a week later, during the same weekly lesson
        this_week = await agent_run("物理", "segment-0001.mp4", until_row=(old.name, "finished"))
        assert this_week["resumed"] is False and this_week["path"] != str(old)
        now[0] = MONDAY_8AM + timedelta(minutes=20)  # the agent restarts again inside today's lesson
        again = await agent_run("物理", "segment-0002.mp4")
        assert again == {**this_week, "resumed": True}

        now[0] += timedelta(minutes=30)  # a manual recording the timetable does not know...
        today = Path(this_week["path"])
        manual = await agent_run("补课", "segment-0001.mp4", until_row=(today.name, "finished"))  # today's is over
        now[0] += timedelta(minutes=config.recording.planned_minutes + 1)  # ...over after planned_minutes
        later = await agent_run("补课", "segment-0001.mp4")
        assert later["resumed"] is False and later["path"] != manual["path"]
        rows = {r["id"]: r for r in store.recordings()}
    finally:
        for source in sources.values():
            source.stop()
        store.close()

    assert segment_files(old) == ["segment-0001.mp4"]  # last week's recording was never appended to
    assert rows[old.name]["state"] == "finished" and rows[old.name]["started"] == "2026-11-09T00:05:00Z"
    index = json.loads((old / INDEX_NAME).read_text())
    assert index["state"] == "finished" and index["final"]["frames"] == index["segments"][0]["frames"] > 0
    assert segment_files(today) == ["segment-0001.mp4", "segment-0002.mp4"]
    assert rows[today.name]["state"] == "finished" and rows[today.name]["started"] == "2026-11-16T00:05:00Z"
    index = json.loads((today / INDEX_NAME).read_text())
    assert index["final"]["frames"] == sum(s["frames"] for s in index["segments"])


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
    data = _toml(write_config(tmp, "mqtt://127.0.0.1:1", **kw))
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
