"""A recording across kill -9, SIGTERM and the week: it continues its own lesson in a new segment, never last week's."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from test_recording import decode_all, segment_fragments, until, write_config
from test_service import running  # the agent test helpers (tests/agent is on sys.path)

from agent.alarms import Alarms
from agent.config.site import load_config
from agent.recording.service import RecordingService, timetable_lesson_on
from agent.sources import make_source
from agent.store import AgentStore
from agent.timetable.parse import parse_timetable
from central.mosquitto import LocalBroker
from contract import to_iso
from streaming.segments import FINAL_NAME, INDEX_NAME


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
